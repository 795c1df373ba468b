<?php

namespace App\Support;

// Appends {"kind": ..., ...} lines to $TEST_OUTPUT_DIR/record.jsonl (nothing without it).
final class Recorder
{
    public static function write(string $kind, array $fields = []): void
    {
        $dir = getenv('TEST_OUTPUT_DIR');
        if ($dir) {
            $line = json_encode(['kind' => $kind] + $fields, JSON_UNESCAPED_SLASHES).PHP_EOL;
            file_put_contents("$dir/record.jsonl", $line, FILE_APPEND | LOCK_EX);
        }
    }
}
