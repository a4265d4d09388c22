<?xml version="1.0" encoding="UTF-8"?>
<!--
  google-shopping: a native products feed as a Google Merchant Center RSS 2.0 feed (g: namespace).

  One item per variant: a product with combinations gives one item per combination, sharing the
  product's id as item_group_id; a product without gives one item. Inactive products are left
  out, and so are the deletions of an incremental feed (a Google feed is a full snapshot).
  GTINs are written only when their GS1 check digit is right; descriptions lose their HTML tags.

  Record-wise: impexmod applies it chunk by chunk and joins the items of each chunk under the
  <channel> of the stylesheet's output for an empty feed (impexmod:record-container).
  Parameters: shop-url (product links), currency (ISO 4217), language (ISO code).
-->
<xsl:stylesheet version="1.0"
    xmlns:xsl="http://www.w3.org/1999/XSL/Transform"
    xmlns:g="http://base.google.com/ns/1.0"
    xmlns:impexmod="urn:impexmod:xslt"
    impexmod:record-wise="true"
    impexmod:record-container="channel"
    exclude-result-prefixes="impexmod">

  <xsl:output method="xml" encoding="UTF-8" indent="yes" media-type="application/rss+xml"/>
  <xsl:strip-space elements="*"/>

  <xsl:param name="shop-url" select="'http://127.0.0.1:5000'"/>
  <xsl:param name="currency" select="'EUR'"/>
  <xsl:param name="language" select="'en'"/>

  <xsl:template match="/">
    <rss version="2.0">
      <channel>
        <title><xsl:value-of select="concat('Products of ', $shop-url)"/></title>
        <link><xsl:value-of select="$shop-url"/></link>
        <description>Google Shopping feed written by impexmod</description>
        <xsl:apply-templates select="advancedimporter/product[active = '1']"/>
      </channel>
    </rss>
  </xsl:template>

  <xsl:template match="product">
    <xsl:variable name="id">
      <xsl:call-template name="id"><xsl:with-param name="of" select="."/></xsl:call-template>
    </xsl:variable>
    <xsl:choose>
      <xsl:when test="combination">
        <xsl:for-each select="combination">
          <xsl:call-template name="item">
            <xsl:with-param name="product" select=".."/>
            <xsl:with-param name="variant" select="."/>
            <xsl:with-param name="id">
              <xsl:choose>
                <xsl:when test="normalize-space(reference) != ''"><xsl:value-of select="normalize-space(reference)"/></xsl:when>
                <xsl:otherwise><xsl:value-of select="concat($id, '-', @supplier-reference)"/></xsl:otherwise>
              </xsl:choose>
            </xsl:with-param>
            <xsl:with-param name="group" select="$id"/>
          </xsl:call-template>
        </xsl:for-each>
      </xsl:when>
      <xsl:otherwise>
        <xsl:call-template name="item">
          <xsl:with-param name="product" select="."/>
          <xsl:with-param name="variant" select="."/>
          <xsl:with-param name="id" select="$id"/>
        </xsl:call-template>
      </xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- A product's item id: its reference, else its key. -->
  <xsl:template name="id">
    <xsl:param name="of"/>
    <xsl:choose>
      <xsl:when test="normalize-space($of/reference) != ''"><xsl:value-of select="normalize-space($of/reference)"/></xsl:when>
      <xsl:otherwise><xsl:value-of select="$of/@supplier-reference"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <xsl:template name="item">
    <xsl:param name="product"/>
    <xsl:param name="variant"/>
    <xsl:param name="id"/>
    <xsl:param name="group" select="''"/>
    <xsl:variable name="name">
      <xsl:call-template name="in-language"><xsl:with-param name="nodes" select="$product/name"/></xsl:call-template>
    </xsl:variable>
    <xsl:variable name="options">
      <xsl:for-each select="$variant/attributeGroup/attribute">
        <xsl:if test="position() &gt; 1">, </xsl:if>
        <xsl:call-template name="in-language"><xsl:with-param name="nodes" select="name"/></xsl:call-template>
      </xsl:for-each>
    </xsl:variable>
    <xsl:variable name="html">
      <xsl:call-template name="in-language">
        <xsl:with-param name="nodes" select="$product/description_short[normalize-space(.) != '']"/>
      </xsl:call-template>
    </xsl:variable>
    <xsl:variable name="summary">
      <xsl:call-template name="strip-tags"><xsl:with-param name="html" select="string($html)"/></xsl:call-template>
    </xsl:variable>
    <xsl:variable name="long">
      <xsl:if test="normalize-space($summary) = ''">
        <xsl:call-template name="strip-tags">
          <xsl:with-param name="html">
            <xsl:call-template name="in-language"><xsl:with-param name="nodes" select="$product/description"/></xsl:call-template>
          </xsl:with-param>
        </xsl:call-template>
      </xsl:if>
    </xsl:variable>
    <xsl:variable name="rewrite">
      <xsl:call-template name="in-language"><xsl:with-param name="nodes" select="$product/link_rewrite"/></xsl:call-template>
    </xsl:variable>
    <xsl:variable name="cover" select="($product/image[cover = '1'] | $product/image[not(../image[cover = '1'])][1])[1]"/>
    <xsl:variable name="is-variant" select="generate-id($variant) != generate-id($product)"/>
    <xsl:variable name="main" select="$variant[$is-variant]/image[1] | $cover[not($is-variant and $variant/image)]"/>
    <item>
      <g:id><xsl:value-of select="substring($id, 1, 50)"/></g:id>
      <g:title>
        <xsl:choose>
          <xsl:when test="normalize-space($options) != ''"><xsl:value-of select="substring(concat(normalize-space($name), ' - ', normalize-space($options)), 1, 150)"/></xsl:when>
          <xsl:otherwise><xsl:value-of select="substring(normalize-space($name), 1, 150)"/></xsl:otherwise>
        </xsl:choose>
      </g:title>
      <g:description>
        <xsl:choose>
          <xsl:when test="normalize-space($summary) != ''"><xsl:value-of select="substring(normalize-space($summary), 1, 5000)"/></xsl:when>
          <xsl:when test="normalize-space($long) != ''"><xsl:value-of select="substring(normalize-space($long), 1, 5000)"/></xsl:when>
          <xsl:otherwise><xsl:value-of select="normalize-space($name)"/></xsl:otherwise>
        </xsl:choose>
      </g:description>
      <g:link>
        <xsl:value-of select="concat($shop-url, '/', normalize-space($rewrite), '.html')"/>
        <xsl:if test="$is-variant"><xsl:value-of select="concat('#', $variant/@supplier-reference)"/></xsl:if>
      </g:link>
      <xsl:if test="$main">
        <g:image_link><xsl:value-of select="normalize-space($main/url)"/></g:image_link>
      </xsl:if>
      <xsl:for-each select="$product/image[generate-id(.) != generate-id($main)][position() &lt;= 10]">
        <g:additional_image_link><xsl:value-of select="normalize-space(url)"/></g:additional_image_link>
      </xsl:for-each>
      <g:availability>
        <xsl:choose>
          <xsl:when test="$variant/stock/quantity &gt; 0">in_stock</xsl:when>
          <xsl:otherwise>out_of_stock</xsl:otherwise>
        </xsl:choose>
      </g:availability>
      <g:price><xsl:value-of select="concat(format-number($variant/price, '0.00'), ' ', $currency)"/></g:price>
      <xsl:variable name="gtin">
        <xsl:call-template name="valid-gtin"><xsl:with-param name="code" select="$variant/ean13"/></xsl:call-template>
        <xsl:call-template name="valid-gtin"><xsl:with-param name="code" select="$variant/upc"/></xsl:call-template>
      </xsl:variable>
      <xsl:variable name="first-gtin">
        <xsl:choose>
          <xsl:when test="contains($gtin, ' ')"><xsl:value-of select="substring-before($gtin, ' ')"/></xsl:when>
          <xsl:otherwise><xsl:value-of select="$gtin"/></xsl:otherwise>
        </xsl:choose>
      </xsl:variable>
      <xsl:if test="$first-gtin != ''">
        <g:gtin><xsl:value-of select="$first-gtin"/></g:gtin>
      </xsl:if>
      <xsl:if test="normalize-space($variant/mpn) != ''">
        <g:mpn><xsl:value-of select="normalize-space($variant/mpn)"/></g:mpn>
      </xsl:if>
      <xsl:if test="$first-gtin = '' and normalize-space($variant/mpn) = ''">
        <g:identifier_exists>no</g:identifier_exists>
      </xsl:if>
      <xsl:if test="normalize-space($product/condition) != ''">
        <g:condition><xsl:value-of select="normalize-space($product/condition)"/></g:condition>
      </xsl:if>
      <xsl:if test="$group != ''">
        <g:item_group_id><xsl:value-of select="substring($group, 1, 50)"/></g:item_group_id>
      </xsl:if>
      <xsl:for-each select="$variant/attributeGroup[is_color_group = '1']/attribute[1]">
        <g:color><xsl:call-template name="in-language"><xsl:with-param name="nodes" select="name"/></xsl:call-template></g:color>
      </xsl:for-each>
      <xsl:for-each select="$variant/attributeGroup[name[translate(., 'SIZE', 'size') = 'size']]/attribute[1]">
        <g:size><xsl:call-template name="in-language"><xsl:with-param name="nodes" select="name"/></xsl:call-template></g:size>
      </xsl:for-each>
    </item>
  </xsl:template>

  <!-- The text in the feed language, else in the first language there is. -->
  <xsl:template name="in-language">
    <xsl:param name="nodes"/>
    <xsl:choose>
      <xsl:when test="$nodes[@lang = $language]"><xsl:value-of select="$nodes[@lang = $language]"/></xsl:when>
      <xsl:otherwise><xsl:value-of select="$nodes[1]"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- Text with its HTML tags taken out. -->
  <xsl:template name="strip-tags">
    <xsl:param name="html"/>
    <xsl:choose>
      <xsl:when test="contains($html, '&lt;')">
        <xsl:value-of select="substring-before($html, '&lt;')"/>
        <xsl:text> </xsl:text>
        <xsl:call-template name="strip-tags">
          <xsl:with-param name="html" select="substring-after(substring-after($html, '&lt;'), '&gt;')"/>
        </xsl:call-template>
      </xsl:when>
      <xsl:otherwise><xsl:value-of select="$html"/></xsl:otherwise>
    </xsl:choose>
  </xsl:template>

  <!-- The code followed by a space if it is a GTIN (8, 12, 13 or 14 digits) with a right check
       digit, else nothing. -->
  <xsl:template name="valid-gtin">
    <xsl:param name="code"/>
    <xsl:variable name="c" select="normalize-space($code)"/>
    <xsl:variable name="n" select="string-length($c)"/>
    <xsl:if test="($n = 8 or $n = 12 or $n = 13 or $n = 14) and translate($c, '0123456789', '') = ''">
      <xsl:variable name="p" select="substring(concat('0000000000000', $c), $n)"/>
      <xsl:variable name="sum" select="3 * (substring($p, 1, 1) + substring($p, 3, 1) + substring($p, 5, 1)
          + substring($p, 7, 1) + substring($p, 9, 1) + substring($p, 11, 1) + substring($p, 13, 1))
          + substring($p, 2, 1) + substring($p, 4, 1) + substring($p, 6, 1) + substring($p, 8, 1)
          + substring($p, 10, 1) + substring($p, 12, 1)"/>
      <xsl:if test="(10 - $sum mod 10) mod 10 = substring($p, 14, 1)">
        <xsl:value-of select="concat($c, ' ')"/>
      </xsl:if>
    </xsl:if>
  </xsl:template>

</xsl:stylesheet>
