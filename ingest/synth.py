# ruff: noqa: E501  (the calibration table in the docstring is wider than a line)
"""A synthetic LA-like city: one MyLA311 year in the canonical schema, and the same stream as a Socrata CSV.

Why it exists: the real LA files cover only 3-5 days each, around the year's turn. Training, the checks
and the forecast backtest need a full year with the mechanisms that make 311 closing times hard to predict:
seasonality, weekends and holidays on intake *and* on work, department capacity (queues build up, so
closing times grow), censoring at extraction, and the traps real exports carry. Everything is vectorised
(numpy/pyarrow); the only Python loops are per day x department x priority class in the queue simulation.

Calibration. "real" = the three MyLA311 files in ../shared/data/real/los_angeles (29,999 rows, pooled);
"api2022" = la311_api_2022-09-19_to_23.csv (20,000 rows); "assumed" = not measurable in 3-5-day windows,
stated so it can be challenged.

| quantity | value used | source |
|---|---|---|
| volume | `rows` over `days`; LA is 1.4-1.75M/year | api2022: ~4.5-5k/weekday |
| type shares | `TypeProfile.share`: bulky .461, graffiti .250, dumping .087, metal .080, e-waste .036, encampment .034, dead animal .020, other .014, lights .008+.007, water .002 | mean of the 4 files' shares |
| department by type | `TypeProfile.departments`; ~2.5% off the majority | real crosstab (Other: ITA .81, BOS .18); misrouting raised to "a few %" (files: <1%) |
| channel by type | `TypeProfile.sources` (graffiti crew .61, ...) | real RequestType x RequestSource |
| crew closed < 5 min | `crew_fast_share` .77 graffiti, .85-.93 others | real Driver Self Report rows |
| water waste | closed within a minute | real: all 49 rows < 1 min |
| lead to scheduled day | lognormal `lead_median_days`, `lead_sigma` | tuned: same-window medians match real |
| median days to close | `real_median_days`: bulky 3.2, e-waste 3.7, metal 3.6, dumping 4.0, graffiti 1.95, dead animal 0.62, encampment 18.7, light 5.9, lights 19.7, other 2.1 | real non-crew closed rows, Dec 27 - Jan 4 windows; synth within 2x there and over a full year (summer backlog lifts it, holidays too) |
| cancelled / referred | per type, ~2.5% / ~0.1%; closed_at after median 1.7 / 0.95 days | real Status x RequestType, ClosedDate |
| never closed | 0.2% | real Open + Pending, fully followed files |
| intake hour | `HOUR_PROFILE_RESIDENT`, `HOUR_PROFILE_CREW` | real CreatedDate hours |
| closing hour | `HOUR_PROFILE_CLOSE` | real ClosedDate hours, non-crew, > 1 h |
| weekend / holiday intake | office Sat .30 Sun .20 hol .18; app/web .65/.60/.57; crew .21/.03/.07 | real per-day counts by channel |
| weekday intake | Mon 1.10 .. Fri 0.92 | assumed |
| seasonality | 1 + 0.12 cos(2 pi (doy - 196) / 365.25) | assumed (summer peak) |
| moving days | bulky +30% on a month's last and first two days | assumed |
| holidays | US federal + California + LA city days (Cesar Chavez Day) | `features.calendar.holiday_days` (`holidays` package) |
| weekend / holiday work | capacity Sat .50, Sun .03, holiday .05 | real ClosedDate weekdays (Sat .61, Sun .02) |
| capacity | `DEPARTMENT_CAPACITY`: ~92% mean utilisation (graffiti 88%, IT 85%) | derived: `expected_utilisation()` |
| areas | 98 neighbourhood councils (names, centroids from lookups/councils.csv); weight, district, ZIPs, precinct | real NC x CD / ZipCode / PolicePrecinct |
| coordinates | centroid + N(0, ~0.9 km), clipped to the city box | assumed |
| trap: closed before created | 0.1%, streetlights closed at local midnight of the created day | real: 0.08%, all streetlights |
| trap: duplicate rows | 0.05%, every field equal | brief |
| trap: crew rows without lat/lon | 10% of crew rows | real: 9.5% of rows, nearly all crew |

Capacity semantics: each department serves at most ``capacity_schedule(...)[day, department]`` queued
requests per day: urgent work first (dead animals), the rest split between the normal class and the low
class (encampments, multi-light outages, feedback) in proportion to their volumes, first-come-first-served
by scheduled day within a class. A request closes on the day it is served, at a time drawn from the
closing-hour profile. ``sla_target_at`` stays missing, as the LA adapter leaves it: LA publishes no promise
(MyLA311's ``ServiceDate`` is mostly the closing day, an outcome), and the CSV writes ServiceDate that way. Crew self-reports closed on the spot, auto-closed water-waste reports,
cancellations and referrals bypass the queues. Capacity scales with volume, so the seasonal backlog is
the same at any size; the day-to-day queue noise is not: below ~100k rows/year the small departments
(IT, Street Lighting, Street Services, LADWP: a few requests a day) wait noticeably longer than at full size.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from features.schema import CITIES, conform

log = logging.getLogger(__name__)

CITY = "la"
TIMEZONE = CITIES[CITY].timezone
SOURCE_FORMAT = "synth"
REFERENCE_ROWS_PER_YEAR = 1_750_000
DAY_SECONDS = 86_400
_EPOCH = date(1970, 1, 1)

# --- departments and their capacity --------------------------------------------------------------------

SANITATION = "Sanitation"
BEAUTIFICATION = "Community Beautification"
STREET_LIGHTING = "Street Lighting"
INFORMATION_TECHNOLOGY = "Information Technology"
WATER_AND_POWER = "Water and Power"
STREET_SERVICES = "Street Services"
DEPARTMENTS: tuple[str, ...] = (
    SANITATION,
    BEAUTIFICATION,
    STREET_LIGHTING,
    INFORMATION_TECHNOLOGY,
    WATER_AND_POWER,
    STREET_SERVICES,
)


@dataclass(frozen=True)
class DepartmentCapacity:
    """How many queued requests a department closes per day, at the reference volume (1.75M rows/year).

    ``per_working_day`` applies Monday-Friday; weekends and holidays get the stated fractions. The
    schedule scales linearly with the generated volume (``rows / days``), so a small test city has the
    same utilisation as a full-size one.
    """

    department: str
    per_working_day: float
    saturday: float = 0.50
    sunday: float = 0.03
    holiday: float = 0.05


# Rounded from `_required_capacity(0.92)`: ~92% mean utilisation (Community Beautification 88%: graffiti
# has no low-priority class to absorb a rush; Information Technology 85%: a small unit whose queue is
# otherwise dominated by day-to-day noise), so the +12% summer peak and post-holiday Mondays build
# queues that take days to clear: the bulky-item median runs ~3 days in winter and ~5 in August.
DEPARTMENT_CAPACITY: dict[str, DepartmentCapacity] = {
    c.department: c
    for c in (
        DepartmentCapacity(SANITATION, 4_620.0),
        DepartmentCapacity(BEAUTIFICATION, 860.0),
        DepartmentCapacity(STREET_LIGHTING, 100.0),
        DepartmentCapacity(INFORMATION_TECHNOLOGY, 61.0),
        DepartmentCapacity(WATER_AND_POWER, 4.0),
        DepartmentCapacity(STREET_SERVICES, 117.0),
    )
}
TARGET_UTILISATION = 0.92

# --- request types ---------------------------------------------------------------------------------------

URGENT, NORMAL, LOW = 0, 1, 2
PRIORITIES = (URGENT, NORMAL, LOW)


@dataclass(frozen=True)
class TypeProfile:
    """Everything the generator knows about one MyLA311 request type (see the module table for sources)."""

    name: str
    share: float
    departments: dict[str, float]
    sources: dict[str, float]
    lead_median_days: float  # intake -> scheduled day, before any queueing
    lead_sigma: float  # lognormal spread of the lead
    priority: int = NORMAL
    cancel_rate: float = 0.0
    referred_rate: float = 0.0005
    crew_fast_share: float = 0.85  # crew self-reports closed within 5 minutes
    instant_share: float = 0.0  # closed within a minute whatever the channel (auto-closed)
    real_median_days: float | None = None  # non-crew closed rows, pooled real files


TYPE_PROFILES: tuple[TypeProfile, ...] = (
    TypeProfile(
        "Bulky Items",
        0.4607,
        {SANITATION: 0.99, STREET_SERVICES: 0.01},
        {"phone": 0.602, "mobile_app": 0.221, "web": 0.150, "crew": 0.025, "email": 0.002, "walk_in": 0.0005},
        lead_median_days=2.5,
        lead_sigma=0.6,
        cancel_rate=0.0075,
        crew_fast_share=0.93,
        real_median_days=3.19,
    ),
    TypeProfile(
        "Graffiti Removal",
        0.2502,
        {BEAUTIFICATION: 0.97, STREET_SERVICES: 0.03},
        {"phone": 0.059, "mobile_app": 0.221, "web": 0.104, "crew": 0.614, "email": 0.002},
        lead_median_days=1.0,
        lead_sigma=0.9,
        cancel_rate=0.0586,
        referred_rate=0.0026,
        crew_fast_share=0.77,
        real_median_days=1.95,
    ),
    TypeProfile(
        "Illegal Dumping Pickup",
        0.0871,
        {SANITATION: 0.92, STREET_SERVICES: 0.08},
        {
            "phone": 0.503,
            "mobile_app": 0.202,
            "web": 0.120,
            "crew": 0.157,
            "email": 0.013,
            "elected_office": 0.003,
            "walk_in": 0.001,
        },
        lead_median_days=3.1,
        lead_sigma=0.7,
        cancel_rate=0.0037,
        crew_fast_share=0.85,
        real_median_days=4.04,
    ),
    TypeProfile(
        "Metal/Household Appliances",
        0.0803,
        {SANITATION: 0.99, STREET_SERVICES: 0.01},
        {"phone": 0.767, "mobile_app": 0.099, "web": 0.114, "crew": 0.017, "email": 0.002},
        lead_median_days=2.7,
        lead_sigma=0.6,
        cancel_rate=0.0249,
        crew_fast_share=0.92,
        real_median_days=3.61,
    ),
    TypeProfile(
        "Electronic Waste",
        0.0361,
        {SANITATION: 0.99, STREET_SERVICES: 0.01},
        {"phone": 0.771, "mobile_app": 0.107, "web": 0.097, "crew": 0.024, "email": 0.001},
        lead_median_days=2.7,
        lead_sigma=0.6,
        cancel_rate=0.0206,
        crew_fast_share=0.93,
        real_median_days=3.68,
    ),
    TypeProfile(
        "Homeless Encampment",
        0.0340,
        {SANITATION: 0.97, STREET_SERVICES: 0.03},
        {
            "phone": 0.184,
            "mobile_app": 0.568,
            "web": 0.235,
            "crew": 0.008,
            "email": 0.003,
            "elected_office": 0.002,
        },
        lead_median_days=18.0,
        lead_sigma=1.6,
        priority=LOW,
        cancel_rate=0.002,
        crew_fast_share=0.43,
        real_median_days=18.7,
    ),
    TypeProfile(
        "Dead Animal Removal",
        0.0202,
        {SANITATION: 0.98, STREET_SERVICES: 0.02},
        {"phone": 0.648, "mobile_app": 0.154, "web": 0.190, "crew": 0.008},
        lead_median_days=0.35,
        lead_sigma=1.0,
        priority=URGENT,
        cancel_rate=0.0113,
        crew_fast_share=0.0,
        real_median_days=0.62,
    ),
    TypeProfile(
        "Other",
        0.0140,
        {INFORMATION_TECHNOLOGY: 0.80, SANITATION: 0.17, STREET_SERVICES: 0.03},
        {"phone": 0.011, "mobile_app": 0.608, "web": 0.381},
        lead_median_days=0.8,
        lead_sigma=0.9,
        cancel_rate=0.2677,
        real_median_days=2.08,
    ),
    TypeProfile(
        "Single Streetlight Issue",
        0.0083,
        {STREET_LIGHTING: 0.96, WATER_AND_POWER: 0.04},
        {"phone": 0.339, "mobile_app": 0.344, "web": 0.271, "email": 0.041, "elected_office": 0.005},
        lead_median_days=5.5,
        lead_sigma=1.8,
        cancel_rate=0.001,
        real_median_days=5.94,
    ),
    TypeProfile(
        "Multiple Streetlight Issue",
        0.0070,
        {STREET_LIGHTING: 0.97, WATER_AND_POWER: 0.03},
        {"phone": 0.410, "mobile_app": 0.309, "web": 0.259, "email": 0.022},
        lead_median_days=26.0,
        lead_sigma=1.5,
        priority=LOW,
        cancel_rate=0.001,
        real_median_days=19.7,
    ),
    TypeProfile(
        "Report Water Waste",
        0.0021,
        {WATER_AND_POWER: 1.0},
        {"phone": 0.082, "mobile_app": 0.694, "web": 0.163, "email": 0.061},
        lead_median_days=0.0,
        lead_sigma=0.0,
        referred_rate=0.0,
        instant_share=1.0,
        real_median_days=0.0,
    ),
    TypeProfile(
        "Feedback",
        0.0002,
        {SANITATION: 0.75, STREET_SERVICES: 0.25},
        {"mobile_app": 0.25, "web": 0.75},
        lead_median_days=20.0,
        lead_sigma=1.5,
        priority=LOW,
        cancel_rate=0.3,
        real_median_days=None,  # one closed row in the files (153 days)
    ),
)
REQUEST_TYPES: tuple[str, ...] = tuple(p.name for p in TYPE_PROFILES)

# Canonical channels the generator emits (a subset of features.schema.SOURCE_VALUES).
SYNTH_SOURCES: tuple[str, ...] = ("phone", "mobile_app", "web", "email", "crew", "elected_office", "walk_in")
# Intake calendar by channel group: (Mon..Fri factors shared, then Sat, Sun, holiday), from the real files.
_OFFICE, _SELF_SERVICE, _CREW = 0, 1, 2
_SOURCE_GROUP = {"phone": _OFFICE, "email": _OFFICE, "elected_office": _OFFICE, "walk_in": _OFFICE}
_SOURCE_GROUP.update({"mobile_app": _SELF_SERVICE, "web": _SELF_SERVICE, "crew": _CREW})
WEEKDAY_INTAKE: tuple[float, ...] = (1.10, 1.06, 1.02, 1.00, 0.92)
WEEKEND_HOLIDAY_INTAKE: dict[int, tuple[float, float, float]] = {
    _OFFICE: (0.30, 0.20, 0.18),
    _SELF_SERVICE: (0.65, 0.60, 0.57),
    _CREW: (0.21, 0.03, 0.07),
}
SEASONAL_AMPLITUDE = 0.12
SEASONAL_PEAK_DAY_OF_YEAR = 196  # mid-July
BULKY_MONTH_TURN_BOOST = 0.30

# Per-mille by hour of day, local time (real files; see the module table).
HOUR_PROFILE_RESIDENT = (6, 3, 3, 2, 1, 3, 7, 31, 70, 89, 88, 90, 88, 88, 90, 90, 75, 53, 35, 25, 21, 17, 15, 10)
HOUR_PROFILE_CREW = (0, 0, 0, 2, 0, 10, 1, 6, 78, 72, 169, 161, 92, 83, 98, 74, 47, 29, 23, 25, 14, 13, 2, 3)
HOUR_PROFILE_CLOSE = (12, 1, 1, 1, 1, 4, 10, 64, 96, 108, 95, 100, 99, 118, 84, 64, 35, 22, 14, 16, 14, 14, 14, 13)


@dataclass(frozen=True)
class TrapRates:
    """Data traps and their rates: real-export faults a pipeline must survive (see the module table)."""

    closed_before_created: float = 0.001  # share of all rows; streetlight requests closed at local midnight
    duplicate_rows: float = 0.0005  # share of output rows that are exact copies of an earlier row
    crew_missing_coordinates: float = 0.10  # share of crew self-reports without latitude/longitude
    stuck_open: float = 0.002  # share of rows never closed, however long the follow-up


TRAPS = TrapRates()
_STATUS_CODES = ("open", "closed", "cancelled", "referred")  # codes used inside `synthesize`
CANCELLED_MEDIAN_DAYS, CANCELLED_SIGMA = 1.73, 1.27
REFERRED_MEDIAN_DAYS, REFERRED_SIGMA = 0.95, 1.0
COORDINATE_JITTER_DEGREES = (0.008, 0.0095)  # (lat, lon) standard deviation: ~0.9 km

# --- areas: one line per neighbourhood council -------------------------------------------------------------
# data_code:council district:rows in the real files:ZIP*rows/ZIP*rows...:police precinct
# From the real MyLA311 files (NC x CD, ZipCode, PolicePrecinct); names and centroids come from
# ingest/adapters/lookups/councils.csv, joined on data_code.
_NC_AREAS = """
4:12:174:91344*174:DEVONSHIRE
5:7:898:91342*857:MISSION
6:6:282:91331*271:MISSION
7:7:511:91331*457:FOOTHILL
8:6:269:91352*248:FOOTHILL
9:7:157:91342*86/91352*39/91040*29:FOOTHILL
10:7:310:91042*168/91040*139:FOOTHILL
11:12:348:91307*192/91304*153:TOPANGA
13:3:411:91303*201/91304*200:TOPANGA
14:3:329:91306*314:TOPANGA
15:3:524:91335*514:WEST VALLEY
16:3:513:91367*249/91364*218/91303*39:TOPANGA
17:3:254:91356*201/91335*50:WEST VALLEY
18:5:307:91316*189/91436*95/91403*22:WEST VALLEY
19:6:441:91406*431:WEST VALLEY
20:6:676:91405*434/91411*119/91401*62:VAN NUYS
21:2:409:91401*219/91606*83/91607*53:VAN NUYS
22:2:159:91605*154:NORTH HOLLYWOOD
23:2:162:91605*158:NORTH HOLLYWOOD
24:2:435:91601*222/91606*185:NORTH HOLLYWOOD
25:2:150:91607*121/91601*19:NORTH HOLLYWOOD
26:4:380:91423*153/91403*144/91401*50:VAN NUYS
27:2:201:91604*158/91602*38:NORTH HOLLYWOOD
28:4:94:91602*69/91601*25:NORTH HOLLYWOOD
29:4:260:90046*121/90068*86/90028*53:HOLLYWOOD
30:4:174:90068*118/90028*55:HOLLYWOOD
32:13:217:90038*126/90028*91:HOLLYWOOD
33:13:410:90038*170/90029*163/90028*71:HOLLYWOOD
34:13:728:90029*536/90027*148:RAMPART
36:4:251:90027*247:NORTHEAST
37:13:126:90039*126:NORTHEAST
38:13:330:90026*203/90039*80/90029*47:NORTHEAST
39:1:229:90065*224:NORTHEAST
40:14:191:90041*163/90065*20:NORTHEAST
41:1:458:90042*454:NORTHEAST
42:1:140:90031*53/90065*51/90042*36:HOLLENBECK
43:13:90:90031*53/90039*37:NORTHEAST
44:13:502:90026*443:RAMPART
46:1:181:90012*163:CENTRAL
47:1:237:90031*226:HOLLENBECK
48:14:330:90032*326:HOLLENBECK
50:14:1105:90033*618/90023*323/90063*164:HOLLENBECK
52:14:652:90013*196/90021*191/90015*132:CENTRAL
53:13:196:90004*76/90057*50/90020*46:RAMPART
54:1:137:90057*68/90005*34/90006*33:RAMPART
55:10:709:90004*346/90020*147/90005*99:OLYMPIC
58:5:389:90036*191/90048*121/90046*59:WILSHIRE
60:10:234:90019*172/90035*51:WILSHIRE
61:5:372:90035*183/90034*183:WEST LOS ANGELES
62:5:263:90064*161/90025*98:WEST LOS ANGELES
63:5:114:90024*96:WEST LOS ANGELES
64:5:117:90210*36/90077*28/90046*26:WEST LOS ANGELES
66:11:199:90025*165/90064*33:WEST LOS ANGELES
67:11:276:90066*193/90034*50/90064*33:PACIFIC
68:11:371:90291*319/90292*48:PACIFIC
70:11:223:90066*141/90230*50/90292*31:PACIFIC
71:11:294:90045*213/90293*57:PACIFIC
73:10:240:90016*125/90019*106:WILSHIRE
74:10:430:90018*240/90019*121/90006*68:SOUTHWEST
75:10:258:90016*257:SOUTHWEST
76:1:279:90006*165/90015*93/90007*20:RAMPART
77:8:364:90018*136/90007*120/90062*66:SOUTHWEST
78:9:441:90011*280/90007*98/90058*35:NEWTON
79:10:277:90008*240/90016*27:SOUTHWEST
80:8:304:90043*296:77TH STREET
81:8:360:90062*166/90047*121/90044*53:77TH STREET
84:8:295:90047*226/90044*69:77TH STREET
86:9:322:90003*240/90001*78:77TH STREET
87:8:718:90003*336/90044*183/90002*124:SOUTHEAST
88:15:275:90002*172/90059*102:SOUTHEAST
90:15:344:90247*113/90061*96/90044*54:SOUTHEAST
91:15:175:90501*149/90248*24:HARBOR
92:15:123:90710*119:HARBOR
93:15:572:90744*565:HARBOR
94:15:140:90732*96/90731*44:HARBOR
95:15:347:90731*347:HARBOR
96:15:186:90731*159/90732*27:HARBOR
97:1:167:90057*59/90017*59/90026*49:RAMPART
99:12:254:91311*248:DEVONSHIRE
100:6:381:91402*371:MISSION
101:7:258:91345*217/91340*39:MISSION
102:1:100:90065*99:NORTHEAST
104:10:139:90019*121/90006*18:WILSHIRE
109:9:421:90037*318/90044*90:77TH STREET
110:9:221:90011*173/90058*47:NEWTON
111:12:123:91343*121:DEVONSHIRE
112:6:265:91343*228/91406*25:MISSION
113:12:132:91324*80/91326*49:DEVONSHIRE
114:12:134:91326*134:DEVONSHIRE
115:5:205:90034*172/90232*29:PACIFIC
118:12:236:91344*215:DEVONSHIRE
119:4:307:90004*105/90036*60/90005*51:OLYMPIC
120:12:154:91325*82/91343*41/91326*25:DEVONSHIRE
121:1:124:90057*66/90017*33/90015*18:RAMPART
124:12:289:91325*165/91324*109:DEVONSHIRE
125:9:320:90011*195/90037*123:NEWTON
126:14:32:90042*32:HOLLENBECK
127:5:6:90024*6:WEST LOS ANGELES
128:1:27:90012*27:CENTRAL
"""
# Rows per NC in the real files are small for some councils; smoothing keeps every council in play.
_AREA_WEIGHT_SMOOTHING = 20.0
_COUNCILS_CSV = Path(__file__).resolve().parent / "adapters" / "lookups" / "councils.csv"

# Cosmetic MyLA311 columns (2020 file): council members and planning commissions per council district.
CD_MEMBERS: dict[str, str] = {
    "1": "Gilbert Cedillo",
    "2": "Paul Krekorian",
    "3": "Bob Blumenfield",
    "4": "David Ryu",
    "5": "Paul Koretz",
    "6": "Nury Martinez",
    "7": "Monica Rodriguez",
    "8": "Marqueece Harris-Dawson",
    "9": "Curren D. Price Jr.",
    "10": "Herb J. Wesson Jr.",
    "11": "Mike Bonin",
    "12": "John Lee",
    "13": "Mitch O'Farrell",
    "14": "Jose Huizar",
    "15": "Joe Buscaino",
}
CD_APC: dict[str, str] = {
    "1": "East Los Angeles APC",
    "2": "South Valley APC",
    "3": "South Valley APC",
    "4": "Central APC",
    "5": "West Los Angeles APC",
    "6": "South Valley APC",
    "7": "North Valley APC",
    "8": "South Los Angeles APC",
    "9": "South Los Angeles APC",
    "10": "South Los Angeles APC",
    "11": "West Los Angeles APC",
    "12": "North Valley APC",
    "13": "Central APC",
    "14": "East Los Angeles APC",
    "15": "Harbor APC",
}
_APC_ASSIGN_TO = {
    "Central APC": "NC",
    "East Los Angeles APC": "NC",
    "Harbor APC": "HB",
    "North Valley APC": "EV",
    "South Los Angeles APC": "SLA",
    "South Valley APC": "WV",
    "West Los Angeles APC": "WLA",
}
_STREETS = (
    "NORMANDIE AVE", "VERMONT AVE", "VANOWEN ST", "SUNSET BLVD", "HOLLYWOOD BLVD", "WESTERN AVE", "WOODMAN AVE",
    "MAIN ST", "SEPULVEDA BLVD", "BERENDO ST", "FIGUEROA ST", "SHERMAN WAY", "HOOVER ST", "BURBANK BLVD",
    "CENTRAL AVE", "VENICE BLVD", "HOBART BLVD", "BEVERLY BLVD", "ANAHEIM ST", "ROSCOE BLVD", "VICTORY BLVD",
    "OLYMPIC BLVD", "MARIPOSA AVE", "VAN NUYS BLVD", "PICO BLVD", "SOTO ST", "ALEXANDRIA AVE", "1ST ST",
    "HARVARD BLVD", "SERRANO AVE", "SATICOY ST", "AVALON BLVD", "VAN NESS AVE", "8TH ST", "SLAUSON AVE",
    "KENMORE AVE", "LAUREL CANYON BLVD", "4TH ST", "GRAMERCY PL", "MANHATTAN PL", "54TH ST", "PACIFIC AVE",
    "OXFORD AVE", "6TH ST", "WOODLEY AVE", "15TH ST",
)  # fmt: skip
_DIRECTIONS = ("W", "N", "S", "E")

# --- the MyLA311 export ------------------------------------------------------------------------------------

LA_CSV_COLUMNS: tuple[str, ...] = (
    "SRNumber", "CreatedDate", "UpdatedDate", "ActionTaken", "Owner", "RequestType", "Status", "RequestSource",
    "MobileOS", "Anonymous", "AssignTo", "ServiceDate", "ClosedDate", "AddressVerified", "ApproximateAddress",
    "Address", "HouseNumber", "Direction", "StreetName", "Suffix", "ZipCode", "Latitude", "Longitude", "Location",
    "TBMPage", "TBMColumn", "TBMRow", "APC", "CD", "CDMember", "NC", "NCName", "PolicePrecinct",
)  # fmt: skip
LA_TIME_FORMAT = "%m/%d/%Y %I:%M:%S %p"
OWNER_CODES: dict[str, str] = {
    SANITATION: "BOS",
    BEAUTIFICATION: "OCB",
    STREET_LIGHTING: "BSL",
    INFORMATION_TECHNOLOGY: "ITA",
    WATER_AND_POWER: "LADWP",
    STREET_SERVICES: "BSS",
}
# Sanitation's newer code, which the 2020 export uses for part of the encampment work.
LASAN_TYPES = ("Homeless Encampment",)
LA_STATUS: dict[str, str] = {"closed": "Closed", "cancelled": "Cancelled", "referred": "Referred Out", "open": "Open"}
LA_SOURCES: dict[str, str] = {
    "phone": "Call",
    "mobile_app": "Mobile App",
    "web": "Self Service",
    "email": "Email",
    "crew": "Driver Self Report",
    "elected_office": "Council's Office",
    "walk_in": "Walk-in",
    "social": "Social",
}


# --- calendar --------------------------------------------------------------------------------------------


def la_holidays(first: date, last: date) -> set[date]:
    """LA's days off between two dates: the same calendar the model's holiday features use.

    `features.calendar.holiday_days` (US federal + California + City of LA days such as Cesar Chavez Day),
    so the generator and the features agree on which days are holidays by construction.
    """
    from features.calendar import holiday_days

    days: set[date] = set()
    for year in range(first.year, last.year + 1):
        days.update(_EPOCH + timedelta(days=int(d)) for d in holiday_days(CITY, year))
    return {d for d in days if first <= d <= last}


def _as_date(start: date | str | pd.Timestamp) -> date:
    return pd.Timestamp(start).date()


def _calendar(first: date, n_days: int) -> pd.DataFrame:
    """One row per local day: weekday (0=Mon), holiday flag, day of year."""
    dates = pd.date_range(first, periods=n_days, freq="D")
    holiday_days = la_holidays(first, first + timedelta(days=n_days - 1))
    return pd.DataFrame(
        {
            "date": dates,
            "weekday": dates.day_of_week.to_numpy(),
            "holiday": np.isin(dates.date, list(holiday_days)) if holiday_days else np.zeros(n_days, bool),
            "day_of_year": dates.day_of_year.to_numpy(),
            "day": dates.day.to_numpy(),
            "days_in_month": dates.days_in_month.to_numpy(),
        }
    )


def _capacity_factor(cal: pd.DataFrame, capacity: DepartmentCapacity) -> np.ndarray:
    weekday = cal["weekday"].to_numpy()
    factor = np.where(weekday == 5, capacity.saturday, np.where(weekday == 6, capacity.sunday, 1.0))
    return np.where(cal["holiday"].to_numpy(), np.minimum(factor, capacity.holiday), factor)


def _volume_scale(rows: int, days: int) -> float:
    return (rows / days) / (REFERENCE_ROWS_PER_YEAR / 365.0)


def capacity_schedule(rows: int, start: date | str, days: int, horizon_days: int | None = None) -> pd.DataFrame:
    """Requests each department can close per local day, for a city of `rows` requests over `days`.

    The "known capacity" a forecast backtest may use: the same numbers `synthesize` serves its queues with.
    Rows are local dates from `start` for `horizon_days` (default `days`), columns are departments.
    """
    first = _as_date(start)
    cal = _calendar(first, horizon_days or days)
    scale = _volume_scale(rows, days)
    data = {d: c.per_working_day * scale * _capacity_factor(cal, c) for d, c in DEPARTMENT_CAPACITY.items()}
    return pd.DataFrame(data, index=pd.Index(cal["date"].dt.date, name="date"))


def _intake_weights(cal: pd.DataFrame, group: int, bulky: bool) -> np.ndarray:
    """Relative intake per day for one channel group: season x weekday x weekend/holiday (x moving days)."""
    weekday = cal["weekday"].to_numpy()
    sat, sun, hol = WEEKEND_HOLIDAY_INTAKE[group]
    by_weekday = np.array([*WEEKDAY_INTAKE, sat, sun])[weekday]
    by_weekday = np.where(cal["holiday"].to_numpy(), hol, by_weekday)
    doy = cal["day_of_year"].to_numpy()
    season = 1.0 + SEASONAL_AMPLITUDE * np.cos(2 * np.pi * (doy - SEASONAL_PEAK_DAY_OF_YEAR) / 365.25)
    weights = by_weekday * season
    if bulky:
        day, last = cal["day"].to_numpy(), cal["days_in_month"].to_numpy()
        weights = weights * np.where((day <= 2) | (day == last), 1.0 + BULKY_MONTH_TURN_BOOST, 1.0)
    return weights


# --- expected load (how the capacities were derived) -----------------------------------------------------


def _queued_share(profile: TypeProfile) -> float:
    """Share of a type's requests that go through a department queue (not cancelled, auto- or crew-closed)."""
    crew = profile.sources.get("crew", 0.0) / sum(profile.sources.values())
    leaves = profile.cancel_rate + profile.referred_rate + TRAPS.stuck_open
    return (1 - leaves) * (1 - profile.instant_share) * (1 - crew * profile.crew_fast_share)


def _working_days_per_year(capacity: DepartmentCapacity) -> float:
    cal = _calendar(date(2024, 1, 1), 366)
    return float(_capacity_factor(cal, capacity).sum()) * 365.0 / 366.0


def _expected_queued_per_year(rows_per_year: float = REFERENCE_ROWS_PER_YEAR) -> dict[str, float]:
    total = sum(p.share for p in TYPE_PROFILES)
    load = dict.fromkeys(DEPARTMENTS, 0.0)
    for p in TYPE_PROFILES:
        routed = sum(p.departments.values())
        for dept, weight in p.departments.items():
            load[dept] += rows_per_year * p.share / total * weight / routed * _queued_share(p)
    return load


def _required_capacity(utilisation: float = TARGET_UTILISATION) -> dict[str, float]:
    """Per-working-day capacity that runs each department at `utilisation` on average (reference volume)."""
    load = _expected_queued_per_year()
    return {d: load[d] / _working_days_per_year(DEPARTMENT_CAPACITY[d]) / utilisation for d in DEPARTMENTS}


def expected_utilisation() -> dict[str, float]:
    """Mean queued demand / capacity per department over a year, from the declared profiles."""
    load = _expected_queued_per_year()
    return {d: load[d] / (c.per_working_day * _working_days_per_year(c)) for d, c in DEPARTMENT_CAPACITY.items()}


# --- areas ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Areas:
    data_code: np.ndarray  # int
    name: np.ndarray  # object
    district: np.ndarray  # object, "1".."15"
    precinct: np.ndarray  # object
    latitude: np.ndarray
    longitude: np.ndarray
    weight: np.ndarray
    zip_vocabulary: np.ndarray  # object, every ZIP any area uses
    zip_codes: np.ndarray  # int, (n_areas, 3) indexes into zip_vocabulary, padded by repeating the first
    zip_cumulative: np.ndarray  # (n_areas, 3) cumulative probabilities


@lru_cache(maxsize=1)
def _areas() -> _Areas:
    """Neighbourhood councils joined with the real-file district/ZIP/precinct table (read once, lazily)."""
    councils = pd.read_csv(_COUNCILS_CSV)
    councils = councils[councils["data_code"] > 0].set_index("data_code")
    records = []
    for token in _NC_AREAS.strip().splitlines():
        code, district, count, zips, precinct = token.split(":", 4)
        if int(code) not in councils.index:
            continue
        pairs = [z.split("*") for z in zips.split("/")]
        records.append(
            (int(code), district, float(count), [p[0] for p in pairs], [float(p[1]) for p in pairs], precinct)
        )
    n = len(records)
    vocabulary = sorted({z for r in records for z in r[3]})
    zip_codes = np.zeros((n, 3), dtype=np.int64)
    zip_cumulative = np.ones((n, 3))
    for i, (_, _, _, zips, counts, _) in enumerate(records):
        padded = (zips + [zips[0]] * 3)[:3]
        zip_codes[i] = [vocabulary.index(z) for z in padded]
        probs = np.array(counts + [0.0] * (3 - len(counts))) / sum(counts)
        zip_cumulative[i] = np.cumsum(probs)
    zip_cumulative[:, -1] = 1.0
    codes = np.array([r[0] for r in records])
    table = councils.loc[codes]
    return _Areas(
        data_code=codes,
        name=table["council_name"].to_numpy(dtype=object),
        district=np.array([r[1] for r in records], dtype=object),
        precinct=np.array([r[5] for r in records], dtype=object),
        latitude=table["latitude"].to_numpy(dtype=float),
        longitude=table["longitude"].to_numpy(dtype=float),
        weight=np.array([r[2] for r in records]) + _AREA_WEIGHT_SMOOTHING,
        zip_vocabulary=np.array(vocabulary, dtype=object),
        zip_codes=zip_codes,
        zip_cumulative=zip_cumulative,
    )


# --- generation helpers -----------------------------------------------------------------------------------


def _draw_categorical(rng: np.random.Generator, groups: np.ndarray, table: np.ndarray) -> np.ndarray:
    """For each row, draw a category from the probability row `table[group]` (vectorised inverse CDF)."""
    cumulative = np.cumsum(table / table.sum(axis=1, keepdims=True), axis=1)
    cumulative[:, -1] = 1.0
    u = rng.random(len(groups))
    out = np.empty(len(groups), dtype=np.int8)
    for g in range(table.shape[0]):
        rows = np.flatnonzero(groups == g)
        if rows.size:
            out[rows] = np.searchsorted(cumulative[g], u[rows], side="right")
    return np.minimum(out, table.shape[1] - 1)


def _seconds_in_day(rng: np.random.Generator, n: int, profile: tuple[int, ...]) -> np.ndarray:
    p = np.asarray(profile, dtype=float)
    hours = rng.choice(24, size=n, p=p / p.sum())
    return hours * 3600 + rng.integers(0, 3600, size=n)


def _lognormal_days(rng: np.random.Generator, median: np.ndarray, sigma: np.ndarray) -> np.ndarray:
    return median * np.exp(sigma * rng.standard_normal(len(median)))


def _localize(local_seconds: np.ndarray, valid: np.ndarray | None = None) -> pd.Series:
    """LA wall-clock seconds -> UTC timestamps, with the adapters' rule (ambiguous = daylight, gaps forward).

    Working in wall-clock seconds and localising once means the MyLA311 CSV (local time, to the second)
    reads back to exactly these instants.
    """
    naive = pd.DatetimeIndex(local_seconds.astype("datetime64[s]"))
    if valid is not None:
        naive = naive.where(valid)
    aware = naive.tz_localize(TIMEZONE, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward")
    return pd.Series(aware.tz_convert("UTC")).astype("datetime64[us, UTC]")


def _to_local_seconds(ts: pd.Timestamp) -> int:
    local = ts.tz_convert(TIMEZONE).tz_localize(None)
    return int((local - pd.Timestamp("1970-01-01")) // pd.Timedelta(seconds=1))


def _join(*parts: pa.Array | str, separator: str = "") -> pa.Array:
    """Element-wise string concatenation (pyarrow), literals included; a missing part makes the result missing."""
    typed = [pa.scalar(p, pa.large_string()) if isinstance(p, str) else p for p in parts]
    return pc.binary_join_element_wise(*typed, pa.scalar(separator, pa.large_string()))


def _strings(values: np.ndarray, codes: np.ndarray) -> pd.Series:
    """Small category list + codes -> a pandas `str` column without materialising Python strings."""
    dictionary = pa.array(list(values), pa.large_string())
    return pd.Series(pc.take(dictionary, pa.array(codes)), dtype="str")


def _simulate_queues(
    department: np.ndarray,
    priority: np.ndarray,
    ready_day: np.ndarray,
    ready_seconds: np.ndarray,
    queued: np.ndarray,
    capacity: np.ndarray,
) -> np.ndarray:
    """Service day of each queued request (-1: not served within the horizon).

    Per department and day, the integer capacity goes to urgent work first; what is left is split between
    the normal and the low class in proportion to their volumes (a dispatcher keeps encampment crews out
    even in a bulky-item rush), and a class's unused share goes to the other. Within a class requests are
    served in order of scheduled day and time. That order is fixed up front, so a day only moves three
    pointers: the loop is days x departments x classes, never rows.
    """
    horizon = capacity.shape[0]
    service = np.full(len(department), -1, dtype=np.int32)
    day_index = np.arange(horizon)
    for d in range(capacity.shape[1]):
        members = np.flatnonzero(queued & (department == d))
        if members.size == 0:
            continue
        per_day = np.diff(np.floor(np.cumsum(capacity[:, d]) + 1e-9), prepend=0.0).astype(np.int64)
        orders, arrived = [], []
        for c in PRIORITIES:
            m = members[priority[members] == c]
            order = m[np.lexsort((ready_seconds[m], ready_day[m]))]
            orders.append(order)
            arrived.append(np.searchsorted(ready_day[order], day_index, side="right").tolist())
        volume = [len(o) for o in orders]
        low_share = volume[LOW] / max(volume[NORMAL] + volume[LOW], 1)
        served = [0, 0, 0]
        served_per_day = np.zeros((3, horizon), dtype=np.int64)
        for day, free in enumerate(per_day.tolist()):
            waiting = [arrived[c][day] - served[c] for c in PRIORITIES]
            urgent = min(free, waiting[URGENT])
            free -= urgent
            low = min(waiting[LOW], int(round(free * low_share)))
            normal = min(waiting[NORMAL], free - low)
            low = min(waiting[LOW], free - normal)  # the normal class's unused share
            for c, take in ((URGENT, urgent), (NORMAL, normal), (LOW, low)):
                if take > 0:
                    served_per_day[c, day] = take
                    served[c] += take
        for c in PRIORITIES:
            if served[c]:
                service[orders[c][: served[c]]] = np.repeat(day_index, served_per_day[c])
    return service


def _end_of_intake(first: date, days: int) -> pd.Timestamp:
    return pd.Timestamp(first + timedelta(days=days)).tz_localize(TIMEZONE).tz_convert("UTC")


# --- the generator ----------------------------------------------------------------------------------------


def synthesize(
    rows: int,
    seed: int,
    start: date | str = "2024-01-01",
    days: int = 365,
    extracted_at: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """`rows` canonical LA-like records created over `days` local days from `start`, as extracted at `extracted_at`.

    Same seed, same frame. `extracted_at` (default: the end of the intake window, local midnight; a naive
    value is read as UTC) censors: whatever has not closed by then is ``open`` with no ``closed_at``. It may not precede the end of
    intake (an export cannot contain requests from after it was pulled). Rows are sorted by ``created_at``;
    ``source_row`` numbers them in that order. See the module docstring for every rate and its source.
    """
    if rows < 1 or days < 1:
        raise ValueError(f"rows and days must be positive, got rows={rows}, days={days}")
    first = _as_date(start)
    end_of_intake = _end_of_intake(first, days)
    extracted = end_of_intake if extracted_at is None else pd.Timestamp(extracted_at)
    if extracted.tzinfo is None:
        extracted = extracted.tz_localize("UTC")
    extracted = extracted.tz_convert("UTC")
    if extracted < end_of_intake:
        raise ValueError(f"extracted_at {extracted} precedes the end of intake {end_of_intake}")

    rng = np.random.default_rng(seed)
    n_duplicates = int(round(rows * TRAPS.duplicate_rows)) if rows > 1 else 0
    n = rows - n_duplicates
    start_day = (first - _EPOCH).days
    extracted_local = _to_local_seconds(extracted)
    horizon = (extracted_local // DAY_SECONDS) - start_day + 1
    cal = _calendar(first, horizon)

    # What was asked, by which channel, and who owns it.
    shares = np.array([p.share for p in TYPE_PROFILES])
    rtype = rng.choice(len(TYPE_PROFILES), size=n, p=shares / shares.sum()).astype(np.int8)
    source_table = np.array([[p.sources.get(s, 0.0) for s in SYNTH_SOURCES] for p in TYPE_PROFILES])
    source = _draw_categorical(rng, rtype, source_table)
    dept_table = np.array([[p.departments.get(d, 0.0) for d in DEPARTMENTS] for p in TYPE_PROFILES])
    department = _draw_categorical(rng, rtype, dept_table)

    # When: the day by channel group's calendar (bulky items also by moving days), the hour by profile.
    group = np.array([_SOURCE_GROUP[s] for s in SYNTH_SOURCES])[source]
    bulky = rtype == REQUEST_TYPES.index("Bulky Items")
    intake_cal = cal.iloc[:days]
    day = np.empty(n, dtype=np.int64)
    for g in (_OFFICE, _SELF_SERVICE, _CREW):
        for is_bulky in (False, True):
            rows_here = np.flatnonzero((group == g) & (bulky == is_bulky))
            if rows_here.size:
                w = _intake_weights(intake_cal, g, is_bulky)
                day[rows_here] = rng.choice(days, size=rows_here.size, p=w / w.sum())
    is_crew = source == SYNTH_SOURCES.index("crew")
    tod = np.where(is_crew, _seconds_in_day(rng, n, HOUR_PROFILE_CREW), _seconds_in_day(rng, n, HOUR_PROFILE_RESIDENT))
    created = (start_day + day) * DAY_SECONDS + tod

    # How it leaves the system.
    profile_arr = {
        name: np.array([getattr(p, name) for p in TYPE_PROFILES], dtype=float)
        for name in (
            "cancel_rate",
            "referred_rate",
            "crew_fast_share",
            "instant_share",
            "lead_median_days",
            "lead_sigma",
            "priority",
        )
    }
    u = rng.random(n)
    cancel_cut = profile_arr["cancel_rate"][rtype]
    referred_cut = cancel_cut + profile_arr["referred_rate"][rtype]
    cancelled = u < cancel_cut
    referred = (u >= cancel_cut) & (u < referred_cut)
    stuck = (u >= referred_cut) & (u < referred_cut + TRAPS.stuck_open)
    active = ~(cancelled | referred | stuck)
    instant = active & (rng.random(n) < profile_arr["instant_share"][rtype])
    crew_fast = active & ~instant & is_crew & (rng.random(n) < profile_arr["crew_fast_share"][rtype])
    queued = active & ~instant & ~crew_fast

    lead_days = _lognormal_days(rng, profile_arr["lead_median_days"][rtype], profile_arr["lead_sigma"][rtype])
    ready = created + np.round(lead_days * DAY_SECONDS).astype(np.int64)
    ready_day = ready // DAY_SECONDS - start_day
    capacity = capacity_schedule(rows, first, days, horizon_days=horizon)[list(DEPARTMENTS)].to_numpy()
    priority = profile_arr["priority"][rtype].astype(np.int8)
    service_day = _simulate_queues(department, priority, ready_day, ready, queued, capacity)

    close_tod = _seconds_in_day(rng, n, HOUR_PROFILE_CLOSE)
    served_at = (start_day + service_day.astype(np.int64)) * DAY_SECONDS + close_tod
    # Served the day it became ready but "before" it was ready: the crew got to it later that day.
    late_same_day = ready + np.round(rng.exponential(2 * 3600.0, n)).astype(np.int64) + 600
    served_at = np.where(served_at < ready, late_same_day, served_at)
    quick = np.where(rng.random(n) < 0.25, 0, np.minimum(np.round(rng.exponential(90.0, n)), 299)).astype(np.int64)
    cancel_days = _lognormal_days(rng, np.full(n, CANCELLED_MEDIAN_DAYS), np.full(n, CANCELLED_SIGMA))
    referred_days = _lognormal_days(rng, np.full(n, REFERRED_MEDIAN_DAYS), np.full(n, REFERRED_SIGMA))
    closed = np.select(
        [queued, crew_fast, instant, cancelled, referred],
        [
            served_at,
            created + quick,
            created + rng.integers(0, 60, n),
            created + np.round(cancel_days * DAY_SECONDS).astype(np.int64),
            created + np.round(referred_days * DAY_SECONDS).astype(np.int64),
        ],
        default=0,
    )
    has_close = (queued & (service_day >= 0)) | crew_fast | instant | cancelled | referred
    status = np.select([cancelled, referred], [2, 3], default=1).astype(np.int8)  # index into _STATUS_CODES

    # Where: a neighbourhood council by real volume, jittered around its centroid, one of its ZIPs.
    areas = _areas()
    area = rng.choice(len(areas.data_code), size=n, p=areas.weight / areas.weight.sum())
    min_lat, max_lat, min_lon, max_lon = CITIES[CITY].bounds
    lat = np.clip(areas.latitude[area] + rng.normal(0, COORDINATE_JITTER_DEGREES[0], n), min_lat, max_lat)
    lon = np.clip(areas.longitude[area] + rng.normal(0, COORDINATE_JITTER_DEGREES[1], n), min_lon, max_lon)
    lat, lon = np.round(lat, 7), np.round(lon, 7)
    no_coordinates = is_crew & (rng.random(n) < TRAPS.crew_missing_coordinates)
    lat[no_coordinates] = np.nan
    lon[no_coordinates] = np.nan
    zip_pick = (rng.random(n)[:, None] > areas.zip_cumulative[area]).sum(axis=1)
    zip_code = areas.zip_codes[area, np.minimum(zip_pick, 2)]

    # Trap: streetlight closings stamped at local midnight of the created day (before creation).
    streetlight = np.isin(
        rtype, [REQUEST_TYPES.index(t) for t in ("Single Streetlight Issue", "Multiple Streetlight Issue")]
    )
    midnight = (created // DAY_SECONDS) * DAY_SECONDS
    candidates = np.flatnonzero(streetlight & queued & has_close & (closed <= extracted_local) & (created > midnight))
    wanted = int(round(n * TRAPS.closed_before_created))
    if wanted > candidates.size:
        log.warning("only %d streetlight rows for %d closed-before-created traps", candidates.size, wanted)
    backdated = rng.choice(candidates, size=min(wanted, candidates.size), replace=False)
    closed[backdated] = midnight[backdated]

    # Order by creation and number the requests (1-<digits>, increasing with time like MyLA311's).
    by_creation = np.argsort(created, kind="stable")
    id_base = 1 + (first - date(2000, 1, 1)).days * 250_000
    sr_number = np.empty(n, dtype=np.int64)
    sr_number[by_creation] = id_base + np.cumsum(rng.integers(1, 100, size=n))
    order = by_creation
    if n_duplicates:
        copies = np.sort(rng.choice(n, size=n_duplicates, replace=False))
        # Each copy sits right after its original in creation order: an export that emitted a row twice.
        order = by_creation[np.sort(np.concatenate([np.arange(n), copies]), kind="stable")]
    request_id = _join("1-", pc.cast(pa.array(sr_number[order]), pa.large_string()))

    # Timestamps: localise once; censor at extraction in UTC (what the export would show).
    created_at = _localize(created[order])
    closed_at = _localize(closed[order], valid=has_close[order])
    status_codes = status[order]
    censored = (closed_at > extracted).to_numpy() | ~has_close[order]
    censored &= status_codes != 0
    closed_at = closed_at.mask(censored)
    status_codes = np.where(censored, 0, status_codes)

    frame = pd.DataFrame(
        {
            "request_id": pd.Series(request_id, dtype="str"),
            "city": CITY,
            "created_at": created_at,
            "request_type": _strings(np.array(REQUEST_TYPES), rtype[order]),
            "source": _strings(np.array(SYNTH_SOURCES), source[order]),
            "latitude": lat[order],
            "longitude": lon[order],
            "zip_code": _strings(areas.zip_vocabulary, zip_code[order]),
            "council_district": _strings(areas.district, area[order]),
            "neighborhood": _strings(areas.name, area[order]),
            "closed_at": closed_at,
            "status": _strings(np.array(_STATUS_CODES), status_codes),
            "department": _strings(np.array(DEPARTMENTS), department[order]),
            "source_format": SOURCE_FORMAT,
            "source_file": SOURCE_FORMAT,
            "source_row": np.arange(rows, dtype=np.int64),
        }
    )
    return conform(frame)


# --- the MyLA311 CSV --------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _clock_strings() -> pa.Array:
    """ "HH:MM:SS AM/PM" for every second of a day, so formatting 1.75M times is a lookup, not a strftime."""
    seconds = pd.Timestamp("2000-01-01") + pd.to_timedelta(np.arange(DAY_SECONDS), unit="s")
    return pa.array(seconds.strftime("%I:%M:%S %p").to_numpy(dtype=object), pa.large_string())


def _la_time(values: pd.Series) -> pa.Array:
    """UTC timestamps -> MyLA311 local wall-clock text ("12/31/2017 11:59:58 PM"); missing stays empty.

    Split into a date (a few hundred distinct values, formatted once each) and a clock time (a lookup into
    the day's 86,400 strings); ~10x faster than strftime with a time zone.
    """
    local = values.dt.tz_convert(TIMEZONE).dt.tz_localize(None).astype("datetime64[s]")
    valid = local.notna().to_numpy()
    seconds = local.to_numpy().astype(np.int64)
    seconds = np.where(valid, seconds, 0)
    day, clock = np.divmod(seconds, DAY_SECONDS)
    unique_days, day_index = np.unique(day, return_inverse=True)
    day_text = pd.DatetimeIndex(unique_days.astype("datetime64[D]")).strftime("%m/%d/%Y").to_numpy(dtype=object)
    date_part = pc.take(pa.array(day_text, pa.large_string()), pa.array(day_index))
    text = _join(date_part, pc.take(_clock_strings(), pa.array(clock)), separator=" ")
    return pc.if_else(pa.array(valid), text, pa.nulls(len(text), pa.large_string()))


def _mapped(values: pd.Series, mapping: dict[str, str], what: str) -> pa.Array:
    """Map canonical strings to export codes via pyarrow (fast); unknown values become empty and are logged."""
    arrow = pa.array(values, pa.large_string())
    keys = pa.array(list(mapping), pa.large_string())
    index = pc.index_in(arrow, value_set=keys)
    unknown = pc.sum(pc.and_(pc.is_valid(arrow), pc.is_null(index))).as_py() or 0
    if unknown:
        log.warning("write_la_csv: %d %s values have no MyLA311 code; written empty", unknown, what)
    return pc.take(pa.array(list(mapping.values()), pa.large_string()), index)


def _row_hash(request_id: pd.Series) -> np.ndarray:
    """A per-request integer for cosmetic columns: duplicates of a request get identical rows."""
    ids = pa.array(request_id, pa.large_string())
    try:
        digits = pc.fill_null(pc.cast(pc.utf8_slice_codeunits(ids, 2), pa.int64()), 0).to_numpy(zero_copy_only=False)
        base = digits.astype(np.uint64)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, TypeError, ValueError):
        base = pd.util.hash_pandas_object(request_id, index=False).to_numpy()
    mixed = (base * np.uint64(0x9E3779B97F4A7C15)) ^ (base >> np.uint64(29))
    return (mixed * np.uint64(0xBF58476D1CE4E5B9)) >> np.uint64(11)


def _pick(options: tuple[str, ...] | list[str], h: np.ndarray) -> pa.Array:
    return pc.take(pa.array(list(options), pa.large_string()), pa.array((h % np.uint64(len(options))).astype(np.int64)))


def write_la_csv(records: pd.DataFrame, path: str | Path) -> None:
    """Write canonical records as a MyLA311 Socrata export (33 columns, LA local time, Owner codes).

    The LA adapter reads it back to the same records: every canonical field has a home (Owner -> department,
    RequestSource -> source, NC/NCName -> neighborhood, ...); ``sla_target_at`` has none (LA publishes no
    promise) and is not written. ServiceDate is the closing day at midnight, as in most real rows. The
    cosmetic columns (address, MobileOS, Anonymous, AssignTo) derive from the request id, so duplicate rows
    stay identical.
    """
    records = conform(records)
    n = len(records)
    h = _row_hash(records["request_id"])
    empty = pa.nulls(n, pa.large_string())

    def const(value: str) -> pa.Array:
        return pa.repeat(pa.scalar(value, pa.large_string()), n)

    owner = _mapped(records["department"], OWNER_CODES, "department")
    lasan = pc.and_(
        pc.is_in(pa.array(records["request_type"], pa.large_string()), pa.array(list(LASAN_TYPES))),
        pc.equal(owner, "BOS"),
    )
    owner = pc.if_else(pc.fill_null(lasan, False), "LASAN", owner)
    source = _mapped(records["source"], LA_SOURCES, "source")
    mobile = pc.equal(source, "Mobile App")
    mobile_os = pc.if_else(pc.fill_null(mobile, False), _pick(("iOS", "iOS", "Android"), h >> np.uint64(3)), empty)

    district = records["council_district"]
    apc = _mapped(district, CD_APC, "council_district")
    areas = _areas()
    neighborhood = records["neighborhood"]
    nc_code = _mapped(neighborhood, dict(zip(areas.name, areas.data_code.astype(str), strict=True)), "neighborhood")
    precinct = _mapped(neighborhood, dict(zip(areas.name, areas.precinct, strict=True)), "neighborhood")

    house = pa.array((100 + (h >> np.uint64(7)) % np.uint64(19_900)).astype(np.int64)).cast(pa.large_string())
    direction = _pick(_DIRECTIONS, h >> np.uint64(17))
    street_pick = h >> np.uint64(23)
    street_name = _pick(_STREETS, street_pick)
    street_only = _pick(tuple(s.rsplit(" ", 1)[0] for s in _STREETS), street_pick)
    suffix = _pick(tuple(s.rsplit(" ", 1)[1] for s in _STREETS), street_pick)
    zip_code = pa.array(records["zip_code"], pa.large_string())
    address = _join(house, direction, street_name, separator=" ")
    address = pc.if_else(pc.is_valid(zip_code), _join(address, zip_code, separator=", "), address)

    lat = pa.array(records["latitude"], pa.float64())
    lon = pa.array(records["longitude"], pa.float64())
    lat_text, lon_text = lat.cast(pa.large_string()), lon.cast(pa.large_string())
    location = _join("(", _join(lat_text, lon_text, separator=", "), ")")

    closed_text = _la_time(records["closed_at"])
    created_text = _la_time(records["created_at"])
    columns: dict[str, pa.Array] = {
        "SRNumber": pa.array(records["request_id"], pa.large_string()),
        "CreatedDate": created_text,
        "UpdatedDate": pc.coalesce(closed_text, created_text),
        "ActionTaken": const("SR Created"),
        "Owner": owner,
        "RequestType": pa.array(records["request_type"], pa.large_string()),
        "Status": _mapped(records["status"], LA_STATUS, "status"),
        "RequestSource": source,
        "MobileOS": mobile_os,
        "Anonymous": _pick(("N",) * 9 + ("Y",), h >> np.uint64(31)),
        "AssignTo": _mapped(pd.Series(apc, dtype="str"), _APC_ASSIGN_TO, "planning commission"),
        "ServiceDate": _la_time(
            records["closed_at"].dt.tz_convert(TIMEZONE).dt.floor("D", ambiguous=True, nonexistent="shift_forward")
        ),
        "ClosedDate": closed_text,
        "AddressVerified": const("Y"),
        "ApproximateAddress": const("N"),
        "Address": address,
        "HouseNumber": house,
        "Direction": direction,
        "StreetName": street_only,
        "Suffix": suffix,
        "ZipCode": zip_code,
        "Latitude": lat,
        "Longitude": lon,
        "Location": location,
        "TBMPage": empty,
        "TBMColumn": empty,
        "TBMRow": empty,
        "APC": apc,
        "CD": pa.array(district, pa.large_string()),
        "CDMember": _mapped(district, CD_MEMBERS, "council_district"),
        "NC": nc_code,
        "NCName": pa.array(neighborhood, pa.large_string()),
        "PolicePrecinct": precinct,
    }
    table = pa.table({name: columns[name] for name in LA_CSV_COLUMNS})
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    # The header as Socrata writes it (bare names); Arrow quotes every string value, as the 2020 export does.
    options = pa_csv.WriteOptions(include_header=False, batch_size=64 * 1024, quoting_style="needed")
    with Path(path).open("wb") as handle:
        handle.write((",".join(LA_CSV_COLUMNS) + "\n").encode())
        pa_csv.write_csv(table, handle, write_options=options)
    log.info("wrote %d MyLA311 rows to %s", n, path)
