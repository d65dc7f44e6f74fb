"""Packaging beyond setup.cfg: the top-level ``config/``, ``migrations/`` and
``knowledge_base/`` (default configuration, schema, seed articles) stay where the
checkout keeps them and are shipped inside the package as ``hotline/_shipped/...``,
so an installed wheel runs outside a checkout (hotline.config.PROJECT_ROOT)."""

from setuptools import find_packages, setup

SHIPPED = {"config": ["*.yaml", "*.toml", "calendar/*.yaml"],
           "migrations": ["*.sql"],
           "knowledge_base": ["*.md", "*.txt", "*/*.md", "*/*.txt"]}

setup(
    packages=find_packages(include=["hotline", "hotline.*"]) + [f"hotline._shipped.{d}" for d in SHIPPED],
    package_dir={f"hotline._shipped.{d}": d for d in SHIPPED},
    package_data={f"hotline._shipped.{d}": patterns for d, patterns in SHIPPED.items()}
    | {"hotline.web": ["static/*", "static/**/*"]},
)
