"""The Alipay rail (openapi gateway.do, RSA2): FinePay's adapter and, in ``simulator/``, a local stand-in for Alipay."""
