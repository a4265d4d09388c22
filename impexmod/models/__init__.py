"""All models, importable from one place."""

from impexmod.models.catalog import (  # noqa: F401
    Attribute,
    AttributeGroup,
    AttributeGroupLang,
    AttributeLang,
    Category,
    CategoryLang,
    CategoryProduct,
    Combination,
    CombinationAttribute,
    CombinationImage,
    Image,
    ImageLang,
    Language,
    Manufacturer,
    Product,
    ProductLang,
    ProductSupplier,
    ProductTag,
    SpecificPrice,
    StockAvailable,
    Supplier,
    Tag,
    now,
)
from impexmod.models.changes import ChangeEpoch, EntityChange  # noqa: F401
from impexmod.models.destinations import *  # noqa: E402, F401, F403
from impexmod.models.identity import Identity  # noqa: F401
from impexmod.models.imports import *  # noqa: E402, F401, F403
from impexmod.models.orders import *  # noqa: E402, F401, F403
from impexmod.models.parts import *  # noqa: E402, F401, F403
from impexmod.models.sales import (  # noqa: F401
    Address,
    Customer,
    Order,
    OrderDetail,
    OrderHistory,
    OrderState,
)
from impexmod.models.schedules import *  # noqa: E402, F401, F403
from impexmod.models.tasks import Run, RunStatus, Task, TaskKind  # noqa: F401
from impexmod.models.templates import *  # noqa: E402, F401, F403
from impexmod.models.users import *  # noqa: E402, F401, F403
