"""Store backends: `edge` (embedded qdrant-edge-py, the default) and `server` (qdrant-client).

Each is imported only when used, so the embedded path never imports qdrant-client and vice versa.
"""
