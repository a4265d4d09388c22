"""The demo catalog's vocabulary, in English and French: categories, names, attributes, tags.

Word lists stand in for Faker on bulk rows: a choice from a list costs a microsecond, a Faker
call tens of them, and 100,000 products need several names each.
"""

from __future__ import annotations

from typing import NamedTuple


class Word(NamedTuple):
    en: str
    fr: str

    def in_lang(self, iso: str) -> str:
        """The word in the language ``iso`` (English where the vocabulary has no translation)."""
        return self.fr if iso == "fr" else self.en


def w(en: str, fr: str | None = None) -> Word:
    """A word in both languages (the same when ``fr`` is omitted)."""
    return Word(en, fr or en)


# The category tree under "Home", one category a line, indented by level: "English / French",
# then, for the leaves products are filed in, what their products are called. Names use their
# leaf's nouns, so a T-shirt never lands in Cookware.
CATEGORIES = """
Clothing / Vêtements
  Men / Homme
    T-shirts: T-shirt; Polo
    Shirts / Chemises: Shirt / Chemise; Overshirt / Surchemise
    Sweaters / Pulls: Sweater / Pull; Cardigan; Hoodie / Sweat
    Jackets / Vestes: Jacket / Veste; Parka; Blazer
  Women / Femme
    Dresses / Robes: Dress / Robe; Maxi dress / Robe longue
    Tops / Hauts: Blouse / Chemisier; Top; Tank top / Débardeur
    Skirts / Jupes: Skirt / Jupe; Pleated skirt / Jupe plissée
    Coats / Manteaux: Coat / Manteau; Trench coat / Trench
  Kids / Enfant: Romper / Barboteuse; Pyjamas / Pyjama; Bib / Bavoir
Shoes / Chaussures
  Sneakers / Baskets: Sneakers / Baskets; Trainers / Tennis
  Boots / Bottes: Boots / Bottes; Ankle boots / Bottines
  Sandals / Sandales: Sandals / Sandales; Flip-flops / Tongs
Accessories / Accessoires
  Bags / Sacs: Tote bag / Cabas; Backpack / Sac à dos; Wallet / Portefeuille
  Belts / Ceintures: Belt / Ceinture
  Hats / Chapeaux: Cap / Casquette; Beanie / Bonnet; Hat / Chapeau
  Scarves / Écharpes: Scarf / Écharpe; Shawl / Châle
Home & Living / Maison
  Kitchen / Cuisine
    Cookware / Ustensiles: Frying pan / Poêle; Saucepan / Casserole; Knife / Couteau
    Tableware / Vaisselle: Mug; Plate / Assiette; Bowl / Bol
  Decoration / Décoration: Cushion / Coussin; Vase; Frame / Cadre; Poster / Affiche
  Bedding / Linge de lit: Duvet cover / Housse de couette; Pillowcase / Taie d'oreiller
  Lighting / Luminaires: Lamp / Lampe; Pendant light / Suspension
Electronics / Électronique
  Audio
    Headphones / Casques: Headphones / Casque; Earbuds / Écouteurs
    Speakers / Enceintes: Speaker / Enceinte; Soundbar / Barre de son
  Phone accessories / Accessoires téléphone: Phone case / Coque; Charger / Chargeur
  Computer accessories / Accessoires informatiques: Mouse / Souris; Keyboard / Clavier
Sports & Outdoors / Sports et plein air
  Running: Running shorts / Short de running; Running vest / Gilet de running
  Cycling / Cyclisme: Bike light / Éclairage vélo; Helmet / Casque vélo
  Camping: Tent / Tente; Sleeping bag / Sac de couchage; Camping stove / Réchaud
  Fitness: Yoga mat / Tapis de yoga; Dumbbell / Haltère; Jump rope / Corde à sauter
Stationery / Papeterie
  Notebooks / Carnets: Notebook / Carnet; Planner / Agenda
  Pens / Stylos: Fountain pen / Stylo plume; Ballpoint pen / Stylo bille
  Art supplies / Beaux-arts: Sketchbook / Carnet de croquis; Watercolours / Aquarelles
Beauty / Beauté
  Skincare / Soins: Face cream / Crème visage; Serum / Sérum
  Fragrance / Parfums: Eau de parfum; Candle / Bougie parfumée
  Haircare / Cheveux: Shampoo / Shampooing; Hair oil / Huile capillaire
Toys / Jouets
  Board games / Jeux de société: Board game / Jeu de société; Card game / Jeu de cartes
  Puzzles: Puzzle; 3D puzzle / Puzzle 3D
  Plush / Peluches: Teddy bear / Ours en peluche; Plush rabbit / Lapin en peluche
"""


class CategoryNode(NamedTuple):
    name: Word
    nouns: list[Word]
    children: list[CategoryNode]


def _word(text: str) -> Word:
    en, _, fr = (part.strip() for part in text.partition("/"))
    return w(en, fr or None)


def _parse_tree(text: str) -> list[CategoryNode]:
    """The nodes of an indented category list (two spaces a level)."""
    roots: list[CategoryNode] = []
    stack: list[tuple[int, list[CategoryNode]]] = [(-1, roots)]
    for line in filter(str.strip, text.splitlines()):
        depth = (len(line) - len(line.lstrip())) // 2
        name, _, nouns = line.strip().partition(":")
        node = CategoryNode(_word(name), [_word(n) for n in nouns.split(";") if n.strip()], [])
        while stack[-1][0] >= depth:
            stack.pop()
        stack[-1][1].append(node)
        stack.append((depth, node.children))
    return roots


def _nouns(nodes: list[CategoryNode]) -> dict[str, tuple[Word, ...]]:
    out = {}
    for node in nodes:
        if node.nouns:
            out[node.name.en] = tuple(node.nouns)
        out.update(_nouns(node.children))
    return out


ROOT = w("Home", "Accueil")
TREE = _parse_tree(CATEGORIES)
NOUNS = _nouns(TREE)  # a leaf category's English name -> what its products are called

# Nouns for products filed in a category this vocabulary does not know (added by a merchant).
GENERIC_NOUNS = [w("Item", "Article"), w("Set", "Ensemble"), w("Kit")]

QUALIFIERS = [
    w("Classic", "Classique"), w("Essential", "Essentiel"), w("Premium"), w("Vintage"),
    w("Urban", "Urbain"), w("Compact"), w("Deluxe", "Luxe"), w("Eco", "Éco"), w("Pro"),
    w("Lightweight", "Léger"), w("Soft", "Doux"), w("Signature"), w("Heritage", "Héritage"),
    w("Everyday", "Quotidien"), w("Nomad", "Nomade"), w("Studio"), w("Organic", "Bio"),
    w("Recycled", "Recyclé"), w("Limited", "Édition limitée"), w("Original"),
]  # fmt: skip

# Model names: the same in every language, as on real product pages.
SERIES = (
    "Orion Atlas Vega Lyra Nova Terra Aurora Boreal Cedar Maple Willow Aspen Birch Alder Coral "
    "Delta Echo Falcon Harbor Indigo Jasper Kestrel Lagoon Meridian Nimbus Onyx Pacific Quartz "
    "Raven Sierra Tundra Umber Vertex Wren Zephyr Amber Basalt Cobalt Dune Ember Fjord Glacier "
    "Horizon Iris Juniper Kodiak Lumen Mistral Nordic Opal"
).split()

MATERIALS = [
    w("cotton", "coton"), w("wool", "laine"), w("linen", "lin"), w("leather", "cuir"),
    w("bamboo", "bambou"), w("recycled polyester", "polyester recyclé"), w("steel", "acier"),
    w("oak", "chêne"), w("ceramic", "céramique"), w("aluminium"),
]  # fmt: skip

MANUFACTURERS = [
    "Northwind", "Fabrikam", "Contoso", "Lumen & Co", "Atelier Rivoli", "Blue Heron",
    "Kestrel Outdoor", "Maison Verte", "Pixel Forge", "Soundwave Labs", "Tidal Goods",
    "Granite Works", "Papeterie Colbert", "Little Fox", "Alpine Trail", "Brume", "Helios",
    "Oakridge", "Saint-Clair", "Velo Atelier",
]  # fmt: skip

# (name, reference prefix): a supplier's references look like "ACM-0K3Q9ZD".
SUPPLIERS = [("Acme", "ACM"), ("Globex", "GLX"), ("Initech", "INI"), ("Vandelay", "VDL")]
SUPPLIER_PREFIXES = dict(SUPPLIERS)

SIZE_GROUP = w("Size", "Taille")
SIZES = ["XS", "S", "M", "L", "XL", "XXL"]
COLOR_GROUP = w("Color", "Couleur")
# (name, hex, code used in combination references)
COLORS = [
    (w("Black", "Noir"), "#000000", "BLK"), (w("White", "Blanc"), "#FFFFFF", "WHT"),
    (w("Grey", "Gris"), "#808080", "GRY"), (w("Red", "Rouge"), "#E84C3D", "RED"),
    (w("Blue", "Bleu"), "#5D9CEC", "BLU"), (w("Navy", "Marine"), "#1F2A44", "NVY"),
    (w("Green", "Vert"), "#A0D468", "GRN"), (w("Yellow", "Jaune"), "#F1C40F", "YLW"),
    (w("Pink", "Rose"), "#FCCACD", "PNK"), (w("Beige"), "#F5F5DC", "BGE"),
    (w("Brown", "Marron"), "#8B4513", "BRN"), (w("Orange"), "#F39C11", "ORG"),
]  # fmt: skip
COLOR_CODES = {name.en: code for name, _hex, code in COLORS}

TAGS = [
    w("new", "nouveau"), w("bestseller", "meilleure vente"), w("sale", "soldes"),
    w("eco-friendly", "écologique"), w("organic", "bio"), w("handmade", "fait main"),
    w("gift idea", "idée cadeau"), w("summer", "été"), w("winter", "hiver"),
    w("limited edition", "édition limitée"), w("premium"), w("vintage"),
    w("made in France", "fabriqué en France"), w("waterproof", "imperméable"),
    w("lightweight", "léger"), w("unisex", "mixte"), w("kids", "enfants"),
    w("outdoor", "plein air"), w("travel", "voyage"), w("home office", "télétravail"),
    w("vegan"), w("recycled", "recyclé"), w("cotton", "coton"), w("wool", "laine"),
    w("leather", "cuir"), w("bamboo", "bambou"), w("wireless", "sans fil"),
    w("rechargeable"), w("compact"), w("family", "famille"), w("back to school", "rentrée"),
    w("christmas", "noël"), w("minimalist", "minimaliste"), w("durable", "durable"),
    w("fair trade", "commerce équitable"), w("hypoallergenic", "hypoallergénique"),
]  # fmt: skip

# PrestaShop's standard order states: (name, colour, paid, shipped, delivery).
ORDER_STATES = [
    ("Awaiting payment", "#4169E1", False, False, False),
    ("Payment accepted", "#32CD32", True, False, False),
    ("Processing in progress", "#FF8C00", True, False, False),
    ("Shipped", "#8A2BE2", True, True, False),
    ("Delivered", "#108510", True, True, True),
    ("Canceled", "#DC143C", False, False, False),
    ("Refunded", "#EC2E15", True, False, False),
    ("Payment error", "#8F0621", False, False, False),
]

# The states an order went through to reach each final state, and how often orders end there.
ORDER_PATHS: list[tuple[list[str], int]] = [
    (["Awaiting payment"], 8),
    (["Awaiting payment", "Payment accepted"], 10),
    (["Awaiting payment", "Payment accepted", "Processing in progress"], 12),
    (["Awaiting payment", "Payment accepted", "Processing in progress", "Shipped"], 15),
    (
        ["Awaiting payment", "Payment accepted", "Processing in progress", "Shipped", "Delivered"],
        45,
    ),
    (["Awaiting payment", "Canceled"], 5),
    (["Awaiting payment", "Payment accepted", "Refunded"], 3),
    (["Payment error"], 2),
]

PAYMENTS = ["Bank wire", "Payment by check", "Credit card", "PayPal"]

DESCRIPTIONS = Word(
    "<p>The {name} by {brand}: {material}, made to last and easy to love.</p>",
    "<p>{name} de {brand} : {material}, fait pour durer et facile à aimer.</p>",
)
SHORT_DESCRIPTIONS = Word("<p>{name}, in {material}.</p>", "<p>{name}, en {material}.</p>")
