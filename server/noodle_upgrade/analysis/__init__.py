"""Change analysis (pure, static): a version's public API, what changed between two
versions, and which call sites in a workspace a version breaks. Nothing here imports
component code."""
