"""Requests to URLs a tenant supplied (import files, campaign hooks, custom-channel webhooks, recommenders): one
guarded client.

Anything a project can make the server fetch or post to goes through `OutboundClient` (client.py), which refuses
addresses inside the operator's network (addresses.py) unless the operator allows them (config.py). Future
tenant URLs (event-stream webhooks) use the same client.
"""
