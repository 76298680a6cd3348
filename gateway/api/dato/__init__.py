"""The DatoCMS CMA uploads dialect, served under ``/dato`` (see ``jsonapi`` for the wire shape)."""
