"""Software hardware: an 8237, the ISA card, an ECP port and a VCR on a virtual clock."""
