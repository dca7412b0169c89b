"""One thin `main()` per task; `rs-reward <task>` dispatches here."""
