"""Cleaning up a namespace leaves nothing of it on the shared broker."""

from __future__ import annotations

import uuid

import pika
import pika.exceptions
import pytest

from gateway.broker import Names, cpas_topology, delete_namespace, directory_topology

CPAS = ["0204402160", "0212344876"]


def test_deleting_a_namespace_removes_its_inboxes_and_its_queues_of_directory_editions(
    amqp_url: str,
) -> None:
    names = Names(f"cleanup-{uuid.uuid4().hex[:10]}")
    topologies = [cpas_topology(CPAS, names=names), directory_topology(CPAS, names=names)]
    queues = [queue for topology in topologies for queue in topology.queues]
    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        channel = connection.channel()
        for queue in queues:
            channel.queue_declare(queue.name, durable=True, arguments=dict(queue.arguments))
    assert any(".directory." in queue.name for queue in queues)

    delete_namespace(amqp_url, CPAS, names=names)

    with pika.BlockingConnection(pika.URLParameters(amqp_url)) as connection:
        for queue in queues:
            channel = connection.channel()
            with pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
                channel.queue_declare(queue.name, passive=True)
            assert closed.value.reply_code == 404, queue.name
