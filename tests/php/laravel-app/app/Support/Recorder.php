<?php

namespace App\Support;

// Appends {"kind": ..., ...} lines to $TEST_OUTPUT_DIR/record.jsonl.
final class Recorder
{
    public static function write(string $kind, array $fields = []): void
    {
        $line = json_encode(['kind' => $kind] + $fields, JSON_UNESCAPED_SLASHES).PHP_EOL;
        file_put_contents(getenv('TEST_OUTPUT_DIR').'/record.jsonl', $line, FILE_APPEND);
    }
}
