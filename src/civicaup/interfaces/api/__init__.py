"""The REST API (FastAPI): every route acts as the person a bearer token names, in that person's city only."""
