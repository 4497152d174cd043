//! Passerelle security server: client side, server side, access rights, monitoring.
