<?php

namespace Illuminate\Container;

use ArrayAccess;
use ReflectionClass;
use ReflectionNamedType;

// A small service container: singletons, aliases, and autowiring of class-typed constructors.
class Container implements ArrayAccess
{
    private array $factories = [];

    private array $instances = [];

    private array $aliases = [];

    public function singleton($abstract, callable $factory)
    {
        $this->factories[$abstract] = $factory;
    }

    public function alias($abstract, $alias)
    {
        $this->aliases[$alias] = $abstract;
    }

    public function bound($abstract)
    {
        $abstract = $this->aliases[$abstract] ?? $abstract;

        return isset($this->factories[$abstract]) || isset($this->instances[$abstract]);
    }

    public function make($abstract)
    {
        $abstract = $this->aliases[$abstract] ?? $abstract;
        if (isset($this->instances[$abstract])) {
            return $this->instances[$abstract];
        }
        if (isset($this->factories[$abstract])) {
            return $this->instances[$abstract] = ($this->factories[$abstract])($this);
        }
        $constructor = (new ReflectionClass($abstract))->getConstructor();
        $arguments = [];
        foreach ($constructor ? $constructor->getParameters() : [] as $parameter) {
            $type = $parameter->getType();
            $arguments[] = $type instanceof ReflectionNamedType && !$type->isBuiltin()
                ? $this->make($type->getName())
                : $parameter->getDefaultValue();
        }

        return new $abstract(...$arguments);
    }

    public function offsetExists($key): bool
    {
        return $this->bound($key);
    }

    public function offsetGet($key): mixed
    {
        return $this->make($key);
    }

    public function offsetSet($key, $value): void
    {
        $this->instances[$key] = $value;
    }

    public function offsetUnset($key): void
    {
        unset($this->instances[$key], $this->factories[$key]);
    }
}
