<?php

namespace App;

use App\Handler\ExplodeHandler;
use App\Handler\LeakHandler;
use App\Handler\PingHandler;
use App\Handler\SlowHandler;
use App\Message\Explode;
use App\Message\Leak;
use App\Message\Ping;
use App\Message\Slow;
use App\Middleware\RecordEnvelope;
use Symfony\Bundle\FrameworkBundle\FrameworkBundle;
use Symfony\Bundle\FrameworkBundle\Kernel\MicroKernelTrait;
use Symfony\Component\DependencyInjection\Loader\Configurator\ContainerConfigurator;
use Symfony\Component\HttpKernel\Kernel as BaseKernel;
use Symfony\Component\Routing\Loader\Configurator\RoutingConfigurator;

/**
 * A minimal real Symfony application (FrameworkBundle, the compiled container, Messenger's
 * buses and middleware) whose messages go to SQS through Messenger's Amazon SQS transport.
 *
 * - The `async` transport's DSN is MESSENGER_TRANSPORT_DSN (.env has a default); App\Message\*
 *   are routed to it. Its serializer is Messenger's default, the native PHP serializer, except
 *   in the environment `json`, where it is Messenger's JSON serializer
 *   (messenger.transport.symfony_serializer): a producer of either kind is this app in prod or
 *   in json (produce.php).
 * - As the kit's recipe tells a team to do in config/services.yaml, the JSON serializer has the
 *   public alias queue_worker_kit.serializer (the runner's SYMFONY_SERIALIZER_SERVICE).
 * - Two buses, messenger.bus.default and messenger.bus.events: each records the envelopes it
 *   is given (RecordEnvelope) and the handlers what they got, to $TEST_OUTPUT_DIR/record.jsonl.
 *   As the recipe tells a team with several buses, the routable bus (which picks the bus by
 *   BusNameStamp, as messenger:consume does) has the public alias queue_worker_kit.bus.
 * - In the environment `consumer` (tests/integration/test_php_consumer.py: `messenger:consume`
 *   under the kit), the failure transport is the kit's DLQ at MESSENGER_FAILURE_DSN: a message
 *   that fails after Messenger's retries goes there, its error in an ErrorDetailsStamp.
 *   Slow and Leak messages (consumer mode's tests) are routed to `async` in every environment.
 * - Cache in var/cache/<env> (warmed by `bin/console cache:warmup` at image build time), or
 *   under $APP_CACHE_DIR (MicroKernelTrait); logs go nowhere (no Monolog): stderr.
 */
final class Kernel extends BaseKernel
{
    use MicroKernelTrait;

    public function registerBundles(): iterable
    {
        yield new FrameworkBundle();
    }

    public function getProjectDir(): string
    {
        return \dirname(__DIR__);
    }

    public function boot(): void
    {
        $first = !$this->booted;
        parent::boot();
        if ($first) {
            Recorder::record('booted', [
                'env' => $this->environment,
                'debug' => $this->debug,
                'greeting' => $_SERVER['APP_GREETING'] ?? null, // from .env (symfony/dotenv)
            ]);
        }
    }

    private function configureContainer(ContainerConfigurator $container): void
    {
        $async = ['dsn' => '%env(MESSENGER_TRANSPORT_DSN)%'];
        if ('json' === $container->env()) {
            $async['serializer'] = 'messenger.transport.symfony_serializer';
        }
        $messenger = [
            'transports' => ['async' => $async],
            'routing' => [Ping::class => 'async', Explode::class => 'async'],
            'default_bus' => 'messenger.bus.default',
            'buses' => [
                'messenger.bus.default' => ['middleware' => [self::recorder('messenger.bus.default')]],
                'messenger.bus.events' => ['middleware' => [self::recorder('messenger.bus.events')]],
            ],
        ];
        $messenger['routing'] += [Slow::class => 'async', Leak::class => 'async'];
        if ('consumer' === $container->env()) {
            $messenger['transports']['failed'] = '%env(MESSENGER_FAILURE_DSN)%';
            $messenger['failure_transport'] = 'failed';
        }
        $container->extension('framework', [
            'secret' => 'queue-worker-kit-tests',
            'http_method_override' => false,
            'serializer' => ['enabled' => true],
            'messenger' => $messenger,
        ]);

        $services = $container->services();
        $services->set(RecordEnvelope::class)->abstract(); // one per bus, with its name
        $services->set(PingHandler::class)->tag('messenger.message_handler');
        $services->set(ExplodeHandler::class)->tag('messenger.message_handler');
        $services->set(SlowHandler::class)->tag('messenger.message_handler');
        $services->set(LeakHandler::class)->tag('messenger.message_handler');
        $services->alias('queue_worker_kit.serializer', 'messenger.transport.symfony_serializer')->public();
        $services->alias('queue_worker_kit.bus', 'messenger.routable_message_bus')->public();
        $services->alias('app.events_bus', 'messenger.bus.events')->public(); // for produce.php
    }

    /** RecordEnvelope in a bus's middleware, told which bus it is in. */
    private static function recorder(string $bus): array
    {
        return ['id' => RecordEnvelope::class, 'arguments' => [$bus]];
    }

    private function configureRoutes(RoutingConfigurator $routes): void
    {
    }
}
