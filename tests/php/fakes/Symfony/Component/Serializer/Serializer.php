<?php

namespace Symfony\Component\Serializer;

use Symfony\Component\Serializer\Exception\UnexpectedValueException;

// The serializer component reduced to JSON and objects built from constructor arguments, as
// ObjectNormalizer handles messages and stamps: normalize reads the properties (their getters
// in the real one), denormalize calls the constructor with the keys of the same names;
// "Foo[]" is a list of Foo.
class Serializer implements SerializerInterface
{
    public function serialize(mixed $data, string $format, array $context = []): string
    {
        return json_encode($this->normalize($data), \JSON_PRESERVE_ZERO_FRACTION);
    }

    public function deserialize(mixed $data, string $type, string $format, array $context = []): mixed
    {
        $decoded = json_decode($data, true);
        if (!\is_array($decoded)) {
            throw new UnexpectedValueException('Syntax error: the data is not a JSON object or array.');
        }

        return $this->denormalize($decoded, $type);
    }

    private function normalize(mixed $data): mixed
    {
        if (\is_array($data)) {
            return array_map($this->normalize(...), $data);
        }
        if (!\is_object($data)) {
            return $data;
        }
        if ($data instanceof \DateTimeInterface) {
            return $data->format(\DateTimeInterface::RFC3339);
        }
        $normalized = [];
        foreach ((new \ReflectionObject($data))->getProperties() as $property) {
            $normalized[$property->getName()] = $this->normalize($property->getValue($data));
        }

        return $normalized;
    }

    private function denormalize(array $data, string $type): object|array
    {
        if (str_ends_with($type, '[]')) {
            return array_map(fn ($item) => $this->denormalize($item, substr($type, 0, -2)), $data);
        }
        if (!class_exists($type)) {
            throw new UnexpectedValueException(sprintf('The type "%s" is not a class.', $type));
        }
        $arguments = [];
        foreach ((new \ReflectionClass($type))->getConstructor()?->getParameters() ?? [] as $parameter) {
            if (\array_key_exists($parameter->getName(), $data)) {
                $value = $data[$parameter->getName()];
                $isDate = str_contains((string) $parameter->getType(), 'DateTime');
                $arguments[$parameter->getName()] = $isDate && \is_string($value) ? new \DateTimeImmutable($value) : $value;
            } elseif (!$parameter->isOptional()) {
                throw new UnexpectedValueException(sprintf('Cannot create "%s": "%s" is missing.', $type, $parameter->getName()));
            }
        }

        return new $type(...$arguments);
    }
}
