//! Passerelle central server: registry, admin API, configuration publishing, catalog.
