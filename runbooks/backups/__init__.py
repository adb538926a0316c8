"""The machinery of the backup runbooks (snapshot, restore, verify_backup, undelete, retention,
backup_slots, recreate_slots, cache_backup, cache_restore, kafka_offsets, kafka_replay,
config_restore): their ports (``ports``), their shared command line (``cli``), and what each kind of
backup needs — verification SQL, logical replication slots, caches, Kafka topic backups, the
Kubernetes configuration export."""
