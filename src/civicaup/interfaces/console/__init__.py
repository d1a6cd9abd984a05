"""The web console: server-rendered pages (Jinja2), readable without JavaScript, signed in with a token."""
