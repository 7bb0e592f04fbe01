"""Synthetic data generators (pure, keyed): token selection, bigram/induction, Dyck languages,
dynamic-programming tasks, memorisation datasets. Import the submodule you need, e.g.
``from jaxml.tasks import token_selection``."""
