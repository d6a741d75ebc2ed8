"""aegis-groups: broadcast one structured question to a committee of agents and gather the answers."""
