//! Volume and database backups: archive format, verification, destinations.
