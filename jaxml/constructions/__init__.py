"""Hand-written weights from the papers' proofs (token selection, induction head, Dyck NoPE,
memorisation). Import the submodule you need, e.g. ``from jaxml.constructions import token_selection``."""
