"""The words CRM exports use: each CRM's standard export columns and stage vocabulary (the
``pipeline.preset`` data), and the usual English and French column and stage names that
``forecast init`` recognises. Data only; ``forecast.inputs.presets`` applies a preset to a table.

The defaults are the CRMs' shipped ones; the README's Presets section says which were checked
against the CRMs' documentation and which were not.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class PresetStage:
    """A stage of a CRM's default pipeline: its label, default win rate, status and other names."""

    name: str
    win_rate: float | None = None  # None for a closed stage: the status gives 1 or 0
    status: str = "open"
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class Preset:
    """A CRM's standard export: canonical column -> its header names (the first found is used),
    its default stages, value mappings and the scale its probability column is written on."""

    crm: str
    columns: dict[str, tuple[str, ...]]
    stages: tuple[PresetStage, ...]
    values: dict[str, dict[str, Any]] = field(default_factory=dict)
    probability_scale: str = "percent"


SALESFORCE = Preset(
    crm="Salesforce (opportunity report)",
    columns={
        "deal_id": ("Opportunity ID", "Opportunity Id", "Opportunity Name"),
        "amount": ("Amount", "Amount (converted)"),
        "close_date": ("Close Date",),
        "stage": ("Stage",),
        "probability": ("Probability (%)", "Probability"),
        "new_logo": ("Type",),
        "forecast_category": ("Forecast Category",),
        "owner": ("Opportunity Owner", "Owner"),
        "created_date": ("Created Date",),
        "currency": ("Opportunity Currency", "Currency"),
        "region": ("Billing Country", "Region"),
        "sector": ("Industry",),
        "product": ("Product Name", "Product"),
        "push_count": ("Push Count",),
    },
    stages=(
        PresetStage("Prospecting", 0.10),
        PresetStage("Qualification", 0.10),
        PresetStage("Needs Analysis", 0.20),
        PresetStage("Value Proposition", 0.50),
        PresetStage("Id. Decision Makers", 0.60),
        PresetStage("Perception Analysis", 0.70),
        PresetStage("Proposal/Price Quote", 0.75),
        PresetStage("Negotiation/Review", 0.90),
        PresetStage("Closed Won", status="won"),
        PresetStage("Closed Lost", status="lost"),
    ),
    values={"new_logo": {"New Business": True, "Existing Business": False}},
)

HUBSPOT = Preset(
    crm="HubSpot (deals export)",
    columns={
        "deal_id": ("Record ID", "Deal ID", "Deal Name"),
        "amount": ("Amount", "Amount in company currency"),
        "close_date": ("Close Date",),
        "stage": ("Deal Stage",),
        "probability": ("Deal probability",),
        "owner": ("Deal owner", "Deal Owner"),
        "created_date": ("Create Date",),
        "new_logo": ("Deal Type",),
        "forecast_category": ("Forecast category",),
        "currency": ("Currency",),
    },
    stages=(
        PresetStage("Appointment Scheduled", 0.2, aliases=("appointmentscheduled",)),
        PresetStage("Qualified To Buy", 0.4, aliases=("qualifiedtobuy",)),
        PresetStage("Presentation Scheduled", 0.6, aliases=("presentationscheduled",)),
        PresetStage("Decision Maker Bought-In", 0.8, aliases=("decisionmakerboughtin",)),
        PresetStage("Contract Sent", 0.9, aliases=("contractsent",)),
        PresetStage("Closed Won", status="won", aliases=("closedwon",)),
        PresetStage("Closed Lost", status="lost", aliases=("closedlost",)),
    ),
    values={
        "new_logo": {
            "New Business": True,
            "newbusiness": True,
            "Existing Business": False,
            "existingbusiness": False,
        }
    },  # fmt: skip
    probability_scale="fraction",
)

PIPEDRIVE = Preset(
    crm="Pipedrive (deals export)",
    columns={
        "deal_id": ("Deal - ID", "ID"),
        "amount": ("Deal - Value", "Value"),
        "close_date": ("Deal - Expected close date", "Expected close date"),
        "stage": ("Deal - Stage", "Stage"),
        "probability": ("Deal - Probability", "Probability"),
        "owner": ("Deal - Owner", "Owner"),
        "created_date": ("Deal - Deal created", "Deal created"),
        "currency": ("Deal - Currency", "Currency"),
    },
    stages=(
        PresetStage("Qualified", 0.2),
        PresetStage("Contact Made", 0.4),
        PresetStage("Demo Scheduled", 0.5),
        PresetStage("Proposal Made", 0.6),
        PresetStage("Negotiations Started", 0.8),
        PresetStage("Won", status="won"),
        PresetStage("Lost", status="lost"),
    ),
)

DYNAMICS = Preset(
    crm="Dynamics 365 Sales (opportunities export)",
    columns={
        "deal_id": ("(Do Not Modify) Opportunity", "Opportunity", "Topic"),
        "amount": ("Est. Revenue", "Estimated Revenue"),
        "close_date": ("Est. Close Date", "Estimated Close Date"),
        "stage": ("Pipeline Phase", "Sales Stage"),
        "probability": ("Probability",),
        "owner": ("Owner",),
        "created_date": ("Created On",),
        "forecast_category": ("Forecast Category",),
        "currency": ("Currency",),
    },
    stages=(
        PresetStage("1-Qualify", 0.1, aliases=("Qualify",)),
        PresetStage("2-Develop", 0.3, aliases=("Develop",)),
        PresetStage("3-Propose", 0.6, aliases=("Propose",)),
        PresetStage("4-Close", 0.8, aliases=("Close",)),
        PresetStage("Won", status="won"),
        PresetStage("Lost", status="lost"),
    ),
)

ZOHO = Preset(
    crm="Zoho CRM (deals export)",
    columns={
        "deal_id": ("Record Id", "Deal Id", "Deal Name"),
        "amount": ("Amount",),
        "close_date": ("Closing Date",),
        "stage": ("Stage",),
        "probability": ("Probability (%)", "Probability"),
        "owner": ("Deal Owner",),
        "created_date": ("Created Time",),
        "new_logo": ("Type",),
        "currency": ("Currency",),
    },
    stages=(
        PresetStage("Qualification", 0.10),
        PresetStage("Needs Analysis", 0.20),
        PresetStage("Value Proposition", 0.40),
        PresetStage("Identify Decision Makers", 0.60),
        PresetStage("Proposal/Price Quote", 0.75),
        PresetStage("Negotiation/Review", 0.90),
        PresetStage("Closed Won", status="won"),
        PresetStage("Closed Lost", status="lost"),
        PresetStage("Closed-Lost to Competition", status="lost"),
    ),
    values={"new_logo": {"New Business": True, "Existing Business": False}},
)

CRM_PRESETS: dict[str, Preset] = {
    "salesforce": SALESFORCE,
    "hubspot": HUBSPOT,
    "pipedrive": PIPEDRIVE,
    "dynamics": DYNAMICS,
    "zoho": ZOHO,
}

SALESFORCE_FORECAST_CATEGORIES = ("Pipeline", "Best Case", "Commit", "Closed", "Omitted")

# Usual header names of each canonical column, English and French, beyond the canonical name
# itself; compared ignoring case, accents, spaces and punctuation (``forecast init``).
COLUMN_NAMES: dict[str, tuple[str, ...]] = {
    "deal_id": ("id", "deal id", "opportunity id", "record id", "reference", "référence", "ref",
                "id affaire", "id opportunité", "numéro", "n°", "n° affaire", "no affaire",
                "numéro d'affaire", "n° d'affaire"),
    "amount": ("amount", "value", "deal value", "revenue", "montant", "montant ht", "valeur",
               "chiffre d'affaires", "ca"),
    "close_date": ("close date", "closing date", "expected close date", "date de clôture",
                   "date de cloture", "date de signature", "clôture prévue", "échéance"),
    "stage": ("stage", "deal stage", "sales stage", "étape", "etape", "phase", "statut", "stade"),
    "probability": ("probability", "probability (%)", "deal probability", "probabilité",
                    "probabilité (%)", "proba"),
    "owner": ("owner", "opportunity owner", "deal owner", "sales rep", "propriétaire",
              "commercial", "responsable", "vendeur"),
    "region": ("region", "région", "territory", "territoire", "zone"),
    "sector": ("sector", "industry", "secteur", "secteur d'activité"),
    "product": ("product", "product name", "produit", "nom du produit"),
    "new_logo": ("type", "deal type", "opportunity type", "new logo", "nouveau client",
                 "type d'affaire"),
    "forecast_category": ("forecast category", "catégorie de prévision"),
    "created_date": ("created date", "create date", "created", "date de création", "créée le",
                     "date de creation"),
    "currency": ("currency", "opportunity currency", "devise", "monnaie"),
    "push_count": ("push count",),
}  # fmt: skip

# Per-line amounts of an "opportunities with products" report: summed per deal id.
LINE_AMOUNT_NAMES = ("total price", "line total", "line amount", "prix total", "montant de la ligne",
                     "total ligne")  # fmt: skip

# Deal names: what an export often has beside (or instead of) a deal id.
DEAL_NAME_NAMES = ("opportunity name", "deal name", "name", "topic", "nom de l'affaire",
                   "nom de l'opportunité", "affaire", "intitulé")  # fmt: skip

# Stage names that mean a closed deal, by status: the one home of this vocabulary. The loader
# recognises them without the scenario listing them (``forecast.inputs.closed``, compared as stage
# names are); ``forecast init`` marks them won or lost (compared like column names).
CLOSED_STAGE_NAMES: dict[str, tuple[str, ...]] = {
    "won": (
        "Closed Won",
        "ClosedWon",
        "Closed-Won",
        "Closed/Won",
        "Closed_Won",
        "Closed - Won",
        "Won",
        "Deal Won",
        "Gagné",
        "Gagnée",
        "Gagne",
        "Gagnee",
        "Affaire gagnée",
        "Signé",
        "Signée",
        "Signe",
        "Signee",
        "Conclu",
        "Conclue",
    ),
    "lost": (
        "Closed Lost",
        "ClosedLost",
        "Closed-Lost",
        "Closed/Lost",
        "Closed_Lost",
        "Closed - Lost",
        "Lost",
        "Deal Lost",
        "Perdu",
        "Perdue",
        "Affaire perdue",
        "Abandonné",
        "Abandonnée",
        "Annulé",
        "Closed-Lost to Competition",
    ),
}

# Win rates init states for an open stage without probabilities in the export and unknown to the
# preset: a generic ladder by the stage's usual names (English and French), compared like column
# names; a stage not listed gets the ladder's lowest rung, and init says it could not decide it.
GENERIC_LADDER: dict[float, tuple[str, ...]] = {
    0.1: ("prospect", "prospecting", "prospection", "lead", "new", "nouveau", "discovery", "découverte",
          "identification", "identified", "contact", "premier contact"),
    0.2: ("qualification", "qualified", "qualifié", "qualifiée", "qualify", "needs analysis",
          "analyse des besoins", "demo", "démo", "presentation", "présentation"),
    0.4: ("proposal", "proposition", "quote", "devis", "offre", "offer", "proposal made",
          "proposition commerciale", "solution"),
    0.6: ("negotiation", "négociation", "negociation", "negotiating", "en négociation", "shortlist"),
    0.8: ("commit", "closing", "contract", "contrat", "contract sent", "contrat envoyé", "verbal",
          "accord verbal", "engagement", "bon de commande"),
}  # fmt: skip
UNKNOWN_STAGE_RATE = 0.1

# new_logo cell values init maps when it finds them in a type column.
NEW_LOGO_VALUES: dict[str, bool] = {
    "new business": True, "new": True, "nouveau client": True, "nouvelle affaire": True,
    "new logo": True, "newbusiness": True,
    "existing business": False, "existing": False, "renewal": False, "upsell": False,
    "client existant": False, "renouvellement": False, "existingbusiness": False,
}  # fmt: skip
