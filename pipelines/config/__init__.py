"""The floor every layer stands on: YAML files, operational settings, file locations."""
