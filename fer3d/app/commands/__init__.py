"""One module per `fer3d` subcommand: `add_<name>(subparsers)` builds its parser and sets
`func` to the command function, which imports its heavy modules itself (`fer3d --help` stays fast)."""
