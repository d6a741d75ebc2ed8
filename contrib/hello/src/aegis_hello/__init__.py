"""aegis-hello: the template a plugin author copies."""
