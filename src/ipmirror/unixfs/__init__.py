"""UnixFS: profiles, chunkers, layouts, directories and HAMTs (importer); reading (exporter)."""
