// impexmod panel: live progress of runs, copy buttons, format options help, schedule preview.
(function () {
  "use strict";

  // The page's words in the panel's language (base.html, #impexmod-messages).
  var source = document.getElementById("impexmod-messages");
  var words = source ? JSON.parse(source.textContent) : {};
  var say = function (key, fallback) { return words[key] || fallback; };
  var statusText = function (status) { return (words.statuses || {})[status] || status; };

  // The language menu: choosing a language saves it (without JavaScript, its OK button).
  document.querySelectorAll("select[data-autosubmit]").forEach(function (select) {
    select.addEventListener("change", function () { select.form.submit(); });
  });

  // Copy buttons: <button data-copy="#input-id">.
  document.querySelectorAll("[data-copy]").forEach(function (button) {
    button.addEventListener("click", function () {
      var input = document.querySelector(button.getAttribute("data-copy"));
      input.focus();
      input.select();
      var done = function () {
        var label = button.textContent;
        button.textContent = say("copied", "Copied");
        setTimeout(function () { button.textContent = label; }, 1500);
      };
      if (navigator.clipboard && window.isSecureContext) {
        navigator.clipboard.writeText(input.value).then(done, function () {
          document.execCommand("copy"); done();
        });
      } else {
        document.execCommand("copy"); done();
      }
    });
  });

  // Output fields: show the options of the chosen format (or predefined template); choosing a
  // predefined template sets the format to automatic (the template implies it).
  var format = document.getElementById("format");
  var template = document.getElementById("template");
  var help = document.querySelectorAll("[data-options-for]");
  if (format && template && help.length) {
    var predefined = (template.getAttribute("data-predefined") || "").split(",");
    var showOptions = function () {
      var key = format.value || (template.value ? "csv" : "xml");
      if (predefined.indexOf(template.value) >= 0) { key = template.value; }
      help.forEach(function (item) {
        item.hidden = item.getAttribute("data-options-for") !== key;
      });
    };
    template.addEventListener("change", function () {
      if (predefined.indexOf(template.value) >= 0) { format.value = ""; }
      showOptions();
    });
    format.addEventListener("change", showOptions);
    showOptions();
  }

  // Schedule preview: the next run times of the schedule and timezone typed, before saving.
  var upcoming = document.getElementById("upcoming-runs");
  var schedule = document.getElementById("schedule");
  var timezone = document.getElementById("timezone");
  if (upcoming && schedule && timezone) {
    var timer = null;
    var showUpcoming = function () {
      var query = "?schedule=" + encodeURIComponent(schedule.value) +
        "&timezone=" + encodeURIComponent(timezone.value);
      fetch(upcoming.getAttribute("data-upcoming-url") + query,
            {credentials: "same-origin", headers: {"Accept": "application/json"}})
        .then(function (response) {
          if (response.redirected) { throw new Error("signed out"); }
          return response.json();
        })
        .then(function (data) {
          upcoming.className = upcoming.className.replace(/ ?text-(danger|muted)/g, "");
          if (data.error) {
            upcoming.classList.add("text-danger");
            upcoming.textContent = data.error;
          } else {
            upcoming.classList.add("text-muted");
            upcoming.textContent = data.labels.length
              ? say("next_runs", "Next runs:") + " " + data.labels.join(" · ")
              : say("manual_only", "Manual only: no scheduled runs.");
          }
        })
        .catch(function () { upcoming.textContent = ""; });
    };
    var later = function () { clearTimeout(timer); timer = setTimeout(showUpcoming, 300); };
    [schedule, timezone].forEach(function (input) {
      input.addEventListener("input", later);
      input.addEventListener("change", showUpcoming);
    });
    showUpcoming();
  }

  // Live progress: rows <tr data-run-id data-active="1"> under <table data-progress-url>.
  var table = document.querySelector("[data-progress-url]");
  if (!table) { return; }
  var url = table.getAttribute("data-progress-url");
  var every = parseInt(table.getAttribute("data-poll-ms") || "1000", 10);

  function activeIds() {
    return Array.prototype.map.call(
      table.querySelectorAll("tr[data-active='1']"),
      function (row) { return row.getAttribute("data-run-id"); }
    );
  }

  function setText(row, name, text) {
    var cell = row.querySelector("[data-field='" + name + "']");
    if (cell) { cell.textContent = text; }
  }

  function update(run) {
    var row = table.querySelector("tr[data-run-id='" + run.id + "']");
    if (!row) { return; }
    var bar = row.querySelector(".progress-bar");
    var ended = !run.active;
    var total = run.total === null ? "?" : run.total;
    if (bar) {
      var pct = ended && run.status === "succeeded" ? 100 : run.percent;
      bar.style.width = pct + "%";
      bar.setAttribute("aria-valuenow", run.done);
      if (run.total !== null) { bar.setAttribute("aria-valuemax", run.total); }
      bar.classList.toggle("progress-bar-animated", !ended);
      bar.classList.toggle("progress-bar-striped", !ended);
      if (ended) {
        bar.classList.remove("bg-primary");
        bar.classList.add(run.status === "succeeded" ? "bg-success" : "bg-danger");
      }
    }
    setText(row, "progress-text", run.done + " / " + total);
    var badge = row.querySelector("[data-field='status']");
    if (badge) {
      badge.textContent = run.status_label || statusText(run.status);
      badge.setAttribute("data-status", run.status);
      badge.className = "badge badge-" + ({queued: "secondary", running: "primary",
        succeeded: "success", failed: "danger", skipped: "warning"}[run.status] || "secondary");
    }
    setText(row, "entities", run.entities);
    setText(row, "size", run.size);
    setText(row, "duration", run.duration);
    setText(row, "warnings", run.warnings || "");
    setText(row, "error", run.error);
    if (ended) {
      row.setAttribute("data-active", "0");
      // Pages that show a run's results once it ends (imports) load them now.
      if (table.hasAttribute("data-reload-on-end")) {
        window.location.reload();
        return;
      }
      var file = row.querySelector("[data-field='file']");
      if (file && run.file_url) {
        file.innerHTML = "";
        var link = document.createElement("a");
        link.href = run.file_url;
        link.textContent = say("download", "Download");
        file.appendChild(link);
      }
    }
  }

  function poll() {
    var ids = activeIds();
    if (!ids.length) { return; }
    fetch(url + "?ids=" + ids.join(","), {credentials: "same-origin",
                                          headers: {"Accept": "application/json"}})
      .then(function (response) {
        if (!response.ok || response.redirected) { throw new Error("signed out"); }
        return response.json();
      })
      .then(function (data) {
        data.runs.forEach(update);
        setTimeout(poll, every);
      })
      .catch(function () { setTimeout(poll, every * 5); });
  }
  setTimeout(poll, every);
})();
