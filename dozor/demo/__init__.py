"""The bundled demo: a small three-language news site and a server for it on 127.0.0.1."""
