"""The wallet registry (CONTRACT section 9) and ``reserve-monitor wallets check``.

`registry` holds the values the watchers use (`Chain`, `Wallet`, `Registry`) and
checks a file into them; `files` reads YAML and CSV keeping each value's place;
`addresses` judges EVM and Bitcoin addresses; `check` is the command.
"""
