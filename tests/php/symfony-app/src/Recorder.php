<?php

namespace App;

/** Appends a JSON line to $TEST_OUTPUT_DIR/record.jsonl (nothing without TEST_OUTPUT_DIR). */
final class Recorder
{
    public static function record(string $kind, array $fields): void
    {
        $dir = getenv('TEST_OUTPUT_DIR');
        if ($dir) {
            $line = json_encode(['kind' => $kind] + $fields, JSON_UNESCAPED_SLASHES).PHP_EOL;
            file_put_contents("$dir/record.jsonl", $line, FILE_APPEND);
        }
    }
}
