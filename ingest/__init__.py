"""How records get in: one adapter per city format (with its lookups), ingest with quarantine, synth."""
