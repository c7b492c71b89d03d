"""What a federation runs, and the local federation of the demo and the tests.

Broker provisioning (:mod:`gateway.federation.provision`: vhost, users,
permissions, topology), the local federation (:mod:`gateway.federation.localnet`:
sample CPAS with their keys and a signed directory), its certificates
(:mod:`gateway.federation.local_pki`) and private RabbitMQ nodes
(:mod:`gateway.federation.local_broker`).
"""
