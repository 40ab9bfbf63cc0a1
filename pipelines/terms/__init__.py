"""Normalised terms: `normalisation` (text and query words to index terms), `matching`
(query terms found at positions of a text), `snippets` (passages around the matches)."""
