<?php

namespace App\Support;

use Illuminate\Contracts\Cache\Repository;

final class ArrayCache implements Repository
{
    private array $items = [];

    public function get($key, $default = null)
    {
        return $this->items[$key] ?? $default;
    }

    public function put($key, $value, $ttl = null)
    {
        $this->items[$key] = $value;

        return true;
    }

    public function increment($key, $value = 1)
    {
        return $this->items[$key] = ($this->items[$key] ?? 0) + $value;
    }

    public function forget($key)
    {
        unset($this->items[$key]);

        return true;
    }
}
