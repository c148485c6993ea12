"""Files `tsad init` writes (package data, shipped in the wheel)."""
