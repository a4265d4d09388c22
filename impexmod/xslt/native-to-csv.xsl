<?xml version="1.0" encoding="UTF-8"?>
<!--
  native-to-csv: a native products feed as a flat CSV, one row per product.

  UTF-8 with a BOM (Excel opens it right), ";" between cells, CRLF line ends, RFC 4180
  quoting; text cells that a spreadsheet would run as a formula (starting with =, +, -, @,
  tab or CR) get a leading apostrophe. Headers are impexmod's canonical flat columns
  (docs/xslt.md), translated ones in the feed language: name[en]. Deletions of an
  incremental feed have no row.

  Record-wise: impexmod applies it chunk by chunk; only the first chunk writes the header.
  Parameters: first-chunk ('1' or '0'), language (ISO code, e.g. 'en').
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:impexmod="urn:impexmod:xslt"
    impexmod:record-wise="true"
    exclude-result-prefixes="impexmod">

  <xsl:output method="text" encoding="UTF-8" media-type="text/csv"/>
  <xsl:strip-space elements="*"/>

  <xsl:param name="first-chunk" select="'1'"/>
  <xsl:param name="language" select="'en'"/>

  <xsl:variable name="sep" select="';'"/>
  <xsl:variable name="eol" select="'&#13;&#10;'"/>
  <xsl:variable name="quote">"</xsl:variable>

  <xsl:template match="/">
    <xsl:if test="$first-chunk = '1'">
      <xsl:text>&#xFEFF;</xsl:text>
      <xsl:value-of select="concat(
        'supplier_reference;source;reference;ean13;upc;isbn;mpn;',
        'name[', $language, '];description_short[', $language, '];',
        'link_rewrite[', $language, '];',
        'price;wholesale_price;ecotax;weight;active;condition;visibility;',
        'manufacturer;manufacturer_source;category_default;category_default_source;',
        'categories;tags;images;quantity', $eol)"/>
    </xsl:if>
    <xsl:apply-templates select="advancedimporter/product"/>
  </xsl:template>

  <xsl:template match="product">
    <xsl:call-template name="cell"><xsl:with-param name="value" select="@supplier-reference"/><xsl:with-param name="text" select="true()"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="@source"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="reference"/><xsl:with-param name="text" select="true()"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="ean13"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="upc"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="isbn"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="mpn"/><xsl:with-param name="text" select="true()"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="lang-cell"><xsl:with-param name="nodes" select="name"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="lang-cell"><xsl:with-param name="nodes" select="description_short"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="lang-cell"><xsl:with-param name="nodes" select="link_rewrite"/></xsl:call-template>
    <xsl:for-each select="price | wholesale_price | ecotax | weight | active | condition | visibility">
      <xsl:value-of select="$sep"/>
      <xsl:call-template name="cell"><xsl:with-param name="value" select="."/></xsl:call-template>
    </xsl:for-each>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="id_manufacturer"/><xsl:with-param name="text" select="true()"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="id_manufacturer/@source"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="id_category_default"/><xsl:with-param name="text" select="true()"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="id_category_default/@source"/></xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell">
      <xsl:with-param name="value"><xsl:for-each select="category"><xsl:if test="position() &gt; 1">|</xsl:if><xsl:value-of select="@supplier-reference"/></xsl:for-each></xsl:with-param>
      <xsl:with-param name="text" select="true()"/>
    </xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell">
      <xsl:with-param name="value"><xsl:for-each select="tag[@lang = $language]"><xsl:if test="position() &gt; 1">|</xsl:if><xsl:value-of select="."/></xsl:for-each></xsl:with-param>
      <xsl:with-param name="text" select="true()"/>
    </xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell">
      <xsl:with-param name="value"><xsl:for-each select="image"><xsl:if test="position() &gt; 1">|</xsl:if><xsl:value-of select="url"/></xsl:for-each></xsl:with-param>
      <xsl:with-param name="text" select="true()"/>
    </xsl:call-template>
    <xsl:value-of select="$sep"/>
    <xsl:call-template name="cell"><xsl:with-param name="value" select="stock/quantity"/></xsl:call-template>
    <xsl:value-of select="$eol"/>
  </xsl:template>

  <!-- The value in the feed language, else in the first language there is. -->
  <xsl:template name="lang-cell">
    <xsl:param name="nodes"/>
    <xsl:call-template name="cell">
      <xsl:with-param name="value">
        <xsl:choose>
          <xsl:when test="$nodes[@lang = $language]"><xsl:value-of select="$nodes[@lang = $language]"/></xsl:when>
          <xsl:otherwise><xsl:value-of select="$nodes[1]"/></xsl:otherwise>
        </xsl:choose>
      </xsl:with-param>
      <xsl:with-param name="text" select="true()"/>
    </xsl:call-template>
  </xsl:template>

  <!-- One cell: neutralised if it is text a spreadsheet would run, quoted if it must be. -->
  <xsl:template name="cell">
    <xsl:param name="value"/>
    <xsl:param name="text" select="false()"/>
    <xsl:variable name="v">
      <xsl:if test="$text and string-length($value) &gt; 0 and contains('=+-@&#9;&#13;', substring($value, 1, 1))">'</xsl:if>
      <xsl:value-of select="$value"/>
    </xsl:variable>
    <xsl:choose>
      <xsl:when test="contains($v, $sep) or contains($v, $quote) or contains($v, '&#10;') or contains($v, '&#13;')">
        <xsl:value-of select="$quote"/>
        <xsl:call-template name="double-quotes"><xsl:with-param name="text" select="string($v)"/></xsl:call-template>
        <xsl:value-of select="$quote"/>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$v"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="double-quotes">
    <xsl:param name="text"/>
    <xsl:choose>
      <xsl:when test="contains($text, $quote)">
        <xsl:value-of select="concat(substring-before($text, $quote), $quote, $quote)"/>
        <xsl:call-template name="double-quotes"><xsl:with-param name="text" select="substring-after($text, $quote)"/></xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$text"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

</xsl:stylesheet>
