"""A user's TOML architecture spec at run time: load it, generate and load its code, verify, derive."""
