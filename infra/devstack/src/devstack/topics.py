"""Create the system's Kafka topics, on Tansu or on Apache Kafka."""

from collections.abc import Iterable

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import TopicAlreadyExistsError, for_code

from shared_contracts.topics import ALL_TOPICS


async def create_topics(
    bootstrap: str, partitions: int = 6, topics: Iterable[str] = ALL_TOPICS
) -> None:
    """Create every topic in `topics` (all of the system's by default); existing ones are kept.

    Replication factor 1 so that a single-broker Apache Kafka accepts it too.
    """
    wanted = [NewTopic(name, num_partitions=partitions, replication_factor=1) for name in topics]
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        response = await admin.create_topics(wanted)
    finally:
        await admin.close()
    # Per-topic failures come back as error codes in the response, not as exceptions.
    for error in response.to_object()["topic_errors"]:
        code = error["error_code"]
        if code not in (0, TopicAlreadyExistsError.errno):
            raise for_code(code)(
                f"cannot create topic {error['topic']}: {error.get('error_message')}"
            )
