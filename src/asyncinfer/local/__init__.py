"""The local stack: template.yaml on one machine (moto, an async endpoint emulator, a Lambda runtime)."""
