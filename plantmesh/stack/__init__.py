"""The local real stack: Mosquitto, Kafka (KRaft) and InfluxDB on loopback, without Docker."""
