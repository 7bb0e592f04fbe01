"""Curated lexicon for the embedded bias detector: person words, sensitive axes, attribute words.

FairT2I (arXiv 2502.03826, Sec. 3.1) asks an LLM which social-bias categories a prompt leaves
open. The embedded detector answers the same question with no service: a prompt is bias-prone
when it refers to people (an occupation, a person noun, a group noun) and a sensitive axis is
open when the prompt does not already state it, either with an attribute word in the person's
noun phrase ("an elderly doctor"), with a pronoun ("she"), or through the noun itself
("grandmother" states gender and age).

The candidate values of each axis follow the paper's example output (gender: male / female /
non-binary; age: young / middle-aged / elderly) and a coarse race/ethnicity grouping similar to
the Stable Bias study (arXiv 2303.11408). They are defaults: every detector takes its own axes.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from jaxml.data.partiprompts import STABLE_BIAS_OCCUPATIONS

__all__ = [
    "Axis",
    "DEFAULT_AXES",
    "AXIS_SYNONYMS",
    "OCCUPATIONS",
    "PERSON_NOUNS",
    "GROUP_NOUNS",
    "NOUN_STATES",
    "ATTRIBUTE_WORDS",
    "PRONOUN_STATES",
    "NON_PERSON_ANCHORS",
    "canonical_axis",
    "singularize",
]


@dataclass(frozen=True)
class Axis:
    """A sensitive attribute axis and its candidate values.

    Attributes:
      name: canonical axis name (``"gender"``, ``"ethnicity"``, ``"age"``, ...).
      values: candidate values, in the order used for target tables.
      order: position of the value's word before the person noun when several attributes are
        inserted (lower comes first): English puts age before origin before gender, as in
        "a young East Asian female doctor".
    """

    name: str
    values: tuple[str, ...]
    order: int

    def __post_init__(self) -> None:
        if not self.name or not self.name.strip():
            raise ValueError("Axis.name must be a non-empty string.")
        if len(self.values) < 2:
            raise ValueError(f"axis {self.name!r} needs at least 2 candidate values; got "
                             f"{self.values!r}.")
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"axis {self.name!r} has duplicate values {self.values!r}.")


DEFAULT_AXES: tuple[Axis, ...] = (
    Axis("age", ("young", "middle-aged", "elderly"), order=0),
    Axis("ethnicity", ("White", "Black", "East Asian", "South Asian", "Hispanic",
                       "Middle Eastern"), order=1),
    Axis("gender", ("male", "female", "non-binary"), order=2),
)

AXIS_SYNONYMS: Mapping[str, str] = MappingProxyType({
    "gender": "gender", "sex": "gender", "gender identity": "gender",
    "race": "ethnicity", "ethnicity": "ethnicity", "race/ethnicity": "ethnicity",
    "race_ethnicity": "ethnicity", "race and ethnicity": "ethnicity", "skin tone": "ethnicity",
    "skin color": "ethnicity", "nationality": "ethnicity",
    "age": "age", "age group": "age",
    "body type": "body type", "religion": "religion", "disability": "disability",
})


def canonical_axis(name: str) -> str:
    """Map an axis name (any case, LLM variants such as ``"Race/Ethnicity"``) to its canonical name."""
    key = " ".join(name.strip().lower().replace("-", " ").split())
    return AXIS_SYNONYMS.get(key, key)


OCCUPATIONS: frozenset[str] = frozenset(o.lower() for o in STABLE_BIAS_OCCUPATIONS) | frozenset({
    "chef", "professor", "surgeon", "judge", "soldier", "astronaut", "athlete", "student",
    "waiter", "waitress", "politician", "president", "programmer", "researcher", "firefighter",
    "police", "policeman", "policewoman", "fireman", "businessman", "businesswoman",
    "entrepreneur", "executive", "banker", "guard", "sailor", "fisherman", "gardener",
    "miner", "dancer", "ballerina", "actor", "actress", "poet", "journalist",
    "reporter", "priest", "monk", "nun", "rabbi", "imam", "pastor", "chemist", "physicist",
    "mathematician", "biologist", "economist", "statistician", "surgeon", "paramedic",
    "midwife", "pediatrician", "cardiologist", "lifeguard", "referee", "umpire", "cowboy",
    "knight", "samurai", "ninja", "pirate", "wizard", "witch", "king", "queen", "prince",
    "princess", "emperor", "empress", "pharaoh", "warrior", "hunter", "shepherd", "blacksmith",
    "tailor", "barber", "florist", "jeweler", "janitor", "barista", "drummer", "guitarist",
    "pianist", "violinist", "conductor", "composer", "sculptor", "skateboarder", "surfer",
    "skier", "snowboarder", "cyclist", "runner", "boxer", "wrestler", "golfer", "swimmer",
    "climber", "hiker", "explorer", "tourist", "traveler", "pilgrim", "detective", "spy",
    "doctors", "clown", "magician", "mayor", "senator", "lawyer", "attorney", "nanny",
    "housekeeper", "babysitter", "caregiver", "ceo",
})

PERSON_NOUNS: frozenset[str] = frozenset({
    "person", "human", "individual", "man", "woman", "boy", "girl", "child", "kid", "baby",
    "toddler", "infant", "teenager", "teen", "adult", "gentleman", "lady", "guy", "gal",
    "father", "mother", "dad", "mom", "son", "daughter", "brother", "sister", "grandmother",
    "grandfather", "grandma", "grandpa", "grandson", "granddaughter", "husband", "wife",
    "uncle", "aunt", "nephew", "niece", "cousin", "friend", "neighbor", "stranger", "customer",
    "patient", "bride", "groom", "couple", "parent", "sibling", "youth", "elder", "senior",
    "retiree", "pedestrian", "passenger", "driver", "rider", "spectator", "player",
    "worker", "employee", "boss", "leader", "villager", "citizen", "resident", "someone",
    "somebody", "everyone", "schoolgirl", "schoolboy", "toddler", "newborn", "widow", "widower",
    "hero", "heroine", "protagonist",
})

GROUP_NOUNS: frozenset[str] = frozenset({
    "people", "crowd", "team", "family", "group", "audience", "children", "kids", "students",
    "friends", "couple", "band", "choir", "class", "staff", "crew", "workers", "persons",
    "humans", "men", "women", "boys", "girls", "adults", "teenagers", "players", "tourists",
})

# nouns that state an axis by themselves: noun -> {axis: value}
NOUN_STATES: Mapping[str, Mapping[str, str]] = MappingProxyType({
    **{w: {"gender": "male"} for w in (
        "man", "men", "gentleman", "guy", "father", "dad", "son", "brother", "husband", "uncle",
        "nephew", "groom", "king", "prince", "emperor", "monk", "actor", "waiter", "businessman",
        "policeman", "fireman", "fisherman", "widower", "hero", "cowboy", "priest")},
    **{w: {"gender": "female"} for w in (
        "woman", "women", "lady", "gal", "mother", "mom", "daughter", "sister", "wife", "aunt",
        "niece", "bride", "queen", "princess", "empress", "nun", "actress", "waitress",
        "businesswoman", "policewoman", "hostess", "widow", "heroine", "ballerina", "witch",
        "maid", "midwife")},
    **{w: {"gender": "male", "age": "young"} for w in ("boy", "boys", "schoolboy")},
    **{w: {"gender": "female", "age": "young"} for w in ("girl", "girls", "schoolgirl")},
    **{w: {"gender": "male", "age": "elderly"} for w in ("grandfather", "grandpa")},
    **{w: {"gender": "female", "age": "elderly"} for w in ("grandmother", "grandma")},
    **{w: {"gender": "male", "age": "young"} for w in ("grandson",)},
    **{w: {"gender": "female", "age": "young"} for w in ("granddaughter",)},
    **{w: {"age": "young"} for w in (
        "child", "children", "kid", "kids", "baby", "toddler", "infant", "teenager", "teen",
        "teenagers", "youth", "newborn", "student", "students", "schoolchild")},
    **{w: {"age": "elderly"} for w in ("elder", "senior", "retiree")},
})

# attribute words that state an axis when they modify a person noun: word -> (axis, value)
ATTRIBUTE_WORDS: Mapping[str, tuple[str, str]] = MappingProxyType({
    **{w: ("gender", "male") for w in ("male", "masculine")},
    **{w: ("gender", "female") for w in ("female", "feminine", "woman", "lady")},
    **{w: ("gender", "non-binary") for w in ("non-binary", "nonbinary", "genderqueer",
                                             "androgynous", "transgender", "trans")},
    **{w: ("age", "young") for w in ("young", "younger", "youthful", "teenage", "little",
                                      "child", "baby", "adolescent", "juvenile")},
    **{w: ("age", "middle-aged") for w in ("middle-aged", "middle aged", "mature", "adult")},
    **{w: ("age", "elderly") for w in ("old", "older", "elderly", "aged", "aging", "senior",
                                        "gray-haired", "grey-haired", "ancient")},
    **{w: ("ethnicity", "White") for w in ("white", "caucasian", "european")},
    **{w: ("ethnicity", "Black") for w in ("black", "african", "african-american")},
    **{w: ("ethnicity", "East Asian") for w in ("asian", "east asian", "chinese", "japanese",
                                               "korean", "vietnamese", "thai", "filipino")},
    **{w: ("ethnicity", "South Asian") for w in ("south asian", "indian", "pakistani",
                                                "bangladeshi", "sri lankan")},
    **{w: ("ethnicity", "Hispanic") for w in ("hispanic", "latino", "latina", "latinx",
                                             "mexican")},
    **{w: ("ethnicity", "Middle Eastern") for w in ("middle eastern", "arab", "arabic",
                                                   "persian", "egyptian", "turkish")},
    **{w: ("ethnicity", "Indigenous") for w in ("indigenous", "native american",
                                               "aboriginal")},
})

PRONOUN_STATES: Mapping[str, tuple[str, str]] = MappingProxyType({
    "he": ("gender", "male"), "him": ("gender", "male"), "his": ("gender", "male"),
    "himself": ("gender", "male"), "she": ("gender", "female"), "her": ("gender", "female"),
    "hers": ("gender", "female"), "herself": ("gender", "female"),
})

# non-person anchors for the embedding extension (objects, animals, places, food, abstract)
NON_PERSON_ANCHORS: tuple[str, ...] = (
    "dog", "cat", "horse", "bird", "fish", "tiger", "lion", "elephant", "rabbit", "bear",
    "monkey", "snake", "cow", "sheep", "owl", "penguin", "giraffe", "zebra", "frog", "insect",
    "car", "truck", "bicycle", "airplane", "boat", "train", "bus", "motorcycle", "rocket",
    "house", "building", "bridge", "tower", "castle", "church", "city", "street", "park",
    "mountain", "river", "lake", "ocean", "beach", "forest", "tree", "flower", "grass",
    "apple", "banana", "pizza", "cake", "bread", "coffee", "cup", "plate", "bowl", "bottle",
    "chair", "table", "sofa", "bed", "lamp", "clock", "book", "pen", "phone", "computer",
    "television", "guitar", "piano", "ball", "hat", "shoe", "shirt", "dress", "bag", "box",
    "painting", "sculpture", "statue", "robot", "toy", "teddy bear", "sign", "logo", "word",
    "letter", "number", "shape", "circle", "square", "triangle", "color", "light", "shadow",
    "sky", "cloud", "sun", "moon", "star", "planet", "rain", "snow", "fire", "water", "ice",
    "stone", "rock", "sand", "glass", "metal", "wood", "paper", "love", "time", "idea",
    "music", "art", "science", "history", "dragon", "unicorn", "dinosaur", "spaceship",
    "kitchen", "bathroom", "office", "room", "window", "door", "wall", "floor", "roof",
)

_IRREGULAR_PLURALS = MappingProxyType({
    "men": "man", "women": "woman", "children": "child", "people": "person",
    "businessmen": "businessman", "businesswomen": "businesswoman", "firemen": "fireman",
    "policemen": "policeman", "policewomen": "policewoman", "fishermen": "fisherman",
    "gentlemen": "gentleman", "ladies": "lady", "wives": "wife", "thieves": "thief",
    "elves": "elf", "teeth": "tooth", "feet": "foot", "mice": "mouse",
})


def singularize(word: str) -> str:
    """Singular form of an English noun (irregular table, then -ies/-es/-s rules)."""
    w = word.lower()
    if w in _IRREGULAR_PLURALS:
        return _IRREGULAR_PLURALS[w]
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith(("ches", "shes", "sses", "xes")):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w
