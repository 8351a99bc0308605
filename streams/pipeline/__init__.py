"""Kafka: the producer, topics and envelopes (`kafka`), the consumer loop every group runs on and its failure handling (`worker`), the retry re-drive (`retry`)."""
