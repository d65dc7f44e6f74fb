"""FastAGI: the production call path (DESIGN.md decision 2).

``protocol`` (wire format), ``session`` (one connection, the Channel adapter),
``server`` (asyncio server, bounded sessions), ``handlers`` (one small module per
entry point), ``pyst`` (the same flows over classic AGI via pyst2), ``peer``
(Asterisk's side of FastAGI for tests, demos and load), ``ami`` (moving a live
channel for console transfers), ``service`` (the node service).
"""
