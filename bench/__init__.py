"""The gateway's benchmark: its speed against the bare broker, side by side in one run.

``python -m bench`` (from the repository root) runs, against the local broker:

1. a **baseline**: a bare pika relay of real envelope sizes (pipelined
   publisher confirms into a durable quorum queue, manual acks in another
   process);
2. the **full pipeline** in both directions (OCMWdata to FicheSociale and
   back), end to end from the first send to the last receipt;
3. **latency** of transfer-to-receipt and request-to-response round trips at
   fixed offered rates, open loop;
4. a **bulk migration** between two node processes, with their peak memory;
5. **where the time goes**: CPU per dossier and per stage, each budgeted stage
   against its budget (the bare library calls are timed on the same messages).

It prints one table with every target and writes the same figures as JSON.
The method of each measurement is in ``docs/performance.md``.
"""
