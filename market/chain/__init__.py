"""Compile, deploy and call the three market contracts on eth-tester or any JSON-RPC node."""
