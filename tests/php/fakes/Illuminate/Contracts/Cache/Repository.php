<?php

namespace Illuminate\Contracts\Cache;

interface Repository
{
    public function get($key, $default = null);

    public function put($key, $value, $ttl = null);

    public function increment($key, $value = 1);

    public function forget($key);
}
