"""Infrastructure shared by the apps: Kafka, the consumer loop, real-time fan-out, health.

Apps import this package; it imports no app.
"""
