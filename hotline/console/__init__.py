"""The web seat console's server side: seat state, screen-pop, the wallboard and
the WebSocket hub that pushes them to browsers."""
