"""The process edges: settings, web app, GitHub client, queue, worker entry and CLI."""
