"""Running civicaup for years: backup and restore, upgrades, services, observability, scale."""
